"""Library-wide assets: unpartitioned, over every video, refreshed as the per-video stages
change. A new one is a module here, added to `LIBRARY_ASSETS` (and its checks)."""

import dagster as dg

from heimdex_pipeline.pipeline.library_assets.library_stats import (
    library_stats,
    vector_rows_match_catalog,
)
from heimdex_pipeline.pipeline.library_assets.people import every_face_has_one_person, people

LIBRARY_ASSETS = [library_stats, people]
LIBRARY_CHECKS = [vector_rows_match_catalog, every_face_has_one_person]

# Evaluates the library assets' automation conditions (Dagster would otherwise add a default
# sensor, stopped until someone turns it on).
library_refresh_sensor = dg.AutomationConditionSensorDefinition(
    "library_refresh",
    target=dg.AssetSelection.assets(*LIBRARY_ASSETS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Refreshes the library-wide assets once the per-video stages changed them.",
)
