"""The hourly sensor that keeps Dagster's `videos` partitions at most HEIMDEX_KEEP_PARTITIONS
(pipeline/retire.py says what retiring means); in the code location only when that is set."""

from __future__ import annotations

import dagster as dg

from heimdex_pipeline.catalog.videos import indexed_video_ids
from heimdex_pipeline.pipeline.resources import CatalogResource
from heimdex_pipeline.pipeline.retire import retire_partitions

RETIRE_INTERVAL_S = 3600


def build_retire_sensor(keep: int, interval_s: int = RETIRE_INTERVAL_S) -> dg.SensorDefinition:
    """Retire the partitions of the oldest indexed videos beyond `keep`, every `interval_s` s."""

    @dg.sensor(
        name="retire_old_partitions",
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Keeps the partitions of at most {keep:,} videos: those of the videos "
        "indexed longest ago are retired (still searchable and listed; their history stays in "
        "the asset's events; their partition comes back when they run again).",
    )
    def retire_old_partitions(
        context: dg.SensorEvaluationContext, catalog: CatalogResource
    ) -> dg.SkipReason:
        def indexed() -> set[str]:
            with catalog.catalog().reading() as session:
                return set(indexed_video_ids(session))

        done = retire_partitions(context.instance, indexed, keep)
        spared = f", {done.busy} spared (a run or backfill covers them)" if done.busy else ""
        return dg.SkipReason(
            f"retired {len(done.retired)} of {done.partitions} partitions, {done.kept} kept{spared}"
        )

    return retire_old_partitions
