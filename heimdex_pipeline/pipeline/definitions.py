"""The code location for a set of settings: the stages, the library-wide assets, the jobs, the
sensors and the resources (the CLI builds it too, to run the same jobs in its own process)."""

from __future__ import annotations

import dagster as dg

from heimdex_pipeline.pipeline.handoff import HandoffIOManager
from heimdex_pipeline.pipeline.jobs import (
    index_video_job,
    maintain_search_index,
    nightly_index_maintenance,
    reembed_videos_job,
    refresh_people_job,
)
from heimdex_pipeline.pipeline.library_assets import (
    LIBRARY_ASSETS,
    LIBRARY_CHECKS,
    library_refresh_sensor,
)
from heimdex_pipeline.pipeline.resources import build_resources
from heimdex_pipeline.pipeline.sensors.failed_runs import (
    build_canceled_runs_sensor,
    build_failed_runs_sensor,
)
from heimdex_pipeline.pipeline.sensors.inbox import build_inbox_sensor
from heimdex_pipeline.pipeline.sensors.lost_retries import build_lost_retries_sensor
from heimdex_pipeline.pipeline.sensors.retire import build_retire_sensor
from heimdex_pipeline.pipeline.stages import video_chain
from heimdex_pipeline.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything Dagster loads, configured from `settings`."""
    resources: dict[str, object] = dict(build_resources(settings))
    retire = (
        [] if settings.keep_partitions is None else [build_retire_sensor(settings.keep_partitions)]
    )
    resources["handoff_io_manager"] = HandoffIOManager(objects=resources["objects"])
    return dg.Definitions(
        assets=[
            video_chain(
                settings.step_retries, settings.step_retry_delay_s, settings.run_batch_size
            ),
            *LIBRARY_ASSETS,
        ],
        asset_checks=LIBRARY_CHECKS,
        jobs=[index_video_job, reembed_videos_job, refresh_people_job, maintain_search_index],
        schedules=[nightly_index_maintenance],
        sensors=[
            build_inbox_sensor(
                settings.run_batch_size,
                settings.sensor_interval_s,
                settings.default_owner,
                settings.inbox_runs_per_tick,
            ),
            build_failed_runs_sensor(settings.outage_reruns, settings.sensor_interval_s),
            build_lost_retries_sensor(settings.outage_reruns, settings.sensor_interval_s),
            build_canceled_runs_sensor(settings.sensor_interval_s),
            library_refresh_sensor,
            *retire,
        ],
        resources=resources,
        # Every run of the chain (index_video, a backfill, "Materialize" in the UI) is one
        # process: models load once, and no step pays for a process of its own.
        executor=dg.in_process_executor,
    )
