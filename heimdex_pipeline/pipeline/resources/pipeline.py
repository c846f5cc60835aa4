"""PipelineResource: the knobs of the media steps and the vector index."""

from __future__ import annotations

import dagster as dg

from heimdex_pipeline.media.detector_names import DEFAULT_DETECTOR
from heimdex_pipeline.media.frames import SampleSettings


class PipelineResource(dg.ConfigurableResource):
    """Knobs of the media steps and the index."""

    max_scene_s: float = 30.0
    shot_detector: str = DEFAULT_DETECTOR  # one of DETECTORS (HEIMDEX_SHOT_DETECTOR)
    thumbnail_long_side: int = 480
    embed_short_side: int = 224
    vector_index_min_rows: int = 10_000
    outage_wait_s: float = 300.0  # how long a re-run after an outage waits for the stores

    def sampling(self) -> SampleSettings:
        return SampleSettings(short_side=self.embed_short_side, long_side=self.thumbnail_long_side)
