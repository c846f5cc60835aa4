"""What Dagster loads: the chain's assets and checks, the jobs, sensors and resources."""

from __future__ import annotations

import dagster as dg

from heimdex_pipeline.assets import video_chain
from heimdex_pipeline.chain import HandoffIOManager
from heimdex_pipeline.jobs import (
    index_video_job,
    maintain_search_index,
    nightly_index_maintenance,
    reembed_videos_job,
)
from heimdex_pipeline.resources import build_resources
from heimdex_pipeline.sensors import (
    build_failed_runs_sensor,
    build_inbox_sensor,
    canceled_runs_fail_their_videos,
)
from heimdex_pipeline.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location for these settings (the CLI builds it too, to run the same job)."""
    resources: dict[str, object] = dict(build_resources(settings))
    resources["handoff_io_manager"] = HandoffIOManager(objects=resources["objects"])
    return dg.Definitions(
        assets=[
            video_chain(settings.step_retries, settings.step_retry_delay_s, settings.run_batch_size)
        ],
        jobs=[index_video_job, reembed_videos_job, maintain_search_index],
        schedules=[nightly_index_maintenance],
        sensors=[
            build_inbox_sensor(settings.run_batch_size),
            build_failed_runs_sensor(settings.outage_reruns),
            canceled_runs_fail_their_videos,
        ],
        resources=resources,
        # Every run of the chain (index_video, a backfill, "Materialize" in the UI) is one
        # process: CLIP loads once, and no step pays for a process of its own.
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())
