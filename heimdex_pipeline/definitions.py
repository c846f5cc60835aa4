"""What Dagster loads: assets, checks, jobs and resources of the heimdex_pipeline location."""

import dagster as dg

from heimdex_pipeline.assets import ALL_ASSETS
from heimdex_pipeline.checks import ALL_CHECKS
from heimdex_pipeline.jobs import index_video_job, maintain_search_index, nightly_index_maintenance
from heimdex_pipeline.resources import build_resources
from heimdex_pipeline.sensors import inbox_sensor
from heimdex_pipeline.settings import load_settings

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[index_video_job, maintain_search_index],
    schedules=[nightly_index_maintenance],
    sensors=[inbox_sensor],
    resources=build_resources(load_settings()),
)
