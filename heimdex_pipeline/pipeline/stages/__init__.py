"""The per-video stages, one module each, and the one definition built from them.

A new stage is a module here with a `Stage` (what it reads, what it needs, its work) added to
`STAGES`; `graph.py` places it by what it reads.
"""

import dagster as dg

from heimdex_pipeline.pipeline.stages.base import Stage
from heimdex_pipeline.pipeline.stages.embeddings import EMBEDDINGS
from heimdex_pipeline.pipeline.stages.faces import FACES
from heimdex_pipeline.pipeline.stages.graph import build_chain
from heimdex_pipeline.pipeline.stages.raw_videos import RAW_VIDEOS
from heimdex_pipeline.pipeline.stages.scenes import SCENES
from heimdex_pipeline.pipeline.stages.search_index import SEARCH_INDEX
from heimdex_pipeline.pipeline.stages.thumbnails import THUMBNAILS
from heimdex_pipeline.pipeline.stages.transcripts import TRANSCRIPTS

STAGES: list[Stage] = [
    RAW_VIDEOS,
    SCENES,
    THUMBNAILS,
    EMBEDDINGS,
    SEARCH_INDEX,
    TRANSCRIPTS,
    FACES,
]
ASSET_NAMES = [stage.asset for stage in STAGES]


def video_chain(step_retries: int, retry_delay_s: float, batch_size: int) -> dg.AssetsDefinition:
    """The stages' assets and checks, retrying transient faults with exponential backoff."""
    policy = dg.RetryPolicy(
        max_retries=step_retries,
        delay=retry_delay_s,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
    return build_chain(STAGES, policy, batch_size)
