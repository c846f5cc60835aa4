"""The five assets, one partition per video: raw_videos → scenes → thumbnails → embeddings →
search_index. Each module holds one stage's work; `chain.py` makes them one Dagster definition."""

import dagster as dg

from heimdex_pipeline.assets.embeddings import EMBEDDINGS
from heimdex_pipeline.assets.raw_videos import RAW_VIDEOS
from heimdex_pipeline.assets.scenes import SCENES
from heimdex_pipeline.assets.search_index import SEARCH_INDEX
from heimdex_pipeline.assets.thumbnails import THUMBNAILS
from heimdex_pipeline.chain import Stage, build_chain

STAGES: list[Stage] = [RAW_VIDEOS, SCENES, THUMBNAILS, EMBEDDINGS, SEARCH_INDEX]
ASSET_NAMES = [stage.asset for stage in STAGES]


def video_chain(step_retries: int, retry_delay_s: float, batch_size: int) -> dg.AssetsDefinition:
    """The chain's assets and checks, retrying transient faults with exponential backoff."""
    policy = dg.RetryPolicy(
        max_retries=step_retries,
        delay=retry_delay_s,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
    return build_chain(STAGES, policy, batch_size)
