"""Jobs: the chain (one definition, run by the CLI, the sensor and backfills alike), re-embedding,
and the vector-index maintenance that keeps search fast."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from heimdex_pipeline.pipeline.partitions import videos
from heimdex_pipeline.pipeline.resources import (
    ObjectStoreResource,
    PipelineResource,
    VectorStoreResource,
)
from heimdex_pipeline.pipeline.stages import ASSET_NAMES
from heimdex_pipeline.pipeline.tags import (
    INDEX_JOB,
    MODE_TAG,
    PEOPLE_JOB,
    REEMBED_JOB,
    REEMBED_MODE,
)
from heimdex_pipeline.stores.keys import RUNS_PREFIX
from heimdex_pipeline.stores.transcripts import ensure_text_index, transcript_tables
from heimdex_pipeline.stores.vectors import maintain

# Handoffs of runs that ended this long ago are swept by the maintenance job.
HANDOFF_RETENTION = timedelta(days=7)

index_video_job = dg.define_asset_job(
    INDEX_JOB,
    selection=dg.AssetSelection.assets(*ASSET_NAMES),
    partitions_def=videos,
    executor_def=dg.in_process_executor,
    description="The whole chain for a batch of videos: probe → scenes → thumbnails → "
    "embeddings → index, in one process (CLIP loaded once). A video that fails is marked "
    "failed with its reason; the others go on.",
)

reembed_videos_job = dg.define_asset_job(
    REEMBED_JOB,
    selection=dg.AssetSelection.assets("embeddings", "search_index"),
    partitions_def=videos,
    executor_def=dg.in_process_executor,
    tags={MODE_TAG: REEMBED_MODE},
    description="Embed videos again with the configured CLIP model and write its vector table "
    "(after a model change). Search keeps serving the previous model until the new table holds "
    "every indexed video; a video whose new embedding fails stays indexed under the old one. "
    "`heimdex reembed` runs it for every indexed video.",
)

refresh_people_job = dg.define_asset_job(
    PEOPLE_JOB,
    selection=dg.AssetSelection.assets("people"),
    executor_def=dg.in_process_executor,
    description="Place the faces no person holds yet (what the automation condition does "
    "after `faces`; `heimdex index` runs it after its batches).",
)


@dg.op
def maintain_vector_tables(
    context: dg.OpExecutionContext, vectors: VectorStoreResource, pipeline: PipelineResource
) -> dict:
    """Compact every scenes table and (re)build its indexes once it is big enough; compact
    every transcripts table, folding its fresh lines into the full-text index."""
    store = vectors.store()
    report = {}
    for name in store.scenes_tables():
        report[name] = maintain(store.open(name), pipeline.vector_index_min_rows)
        context.log.info(f"{name}: {report[name] or 'indexes up to date'}")
    for name in transcript_tables(store):  # fold fresh lines into the full-text index
        table = store.open(name)
        table.optimize()
        report[name] = {"text_index_built": ensure_text_index(table)}
        context.log.info(f"{name}: compacted, full-text index up to date")
    return report


@dg.op
def sweep_run_handoffs(context: dg.OpExecutionContext, objects: ObjectStoreResource) -> int:
    """Remove what the steps of long-finished runs handed each other (kept for re-execution)."""
    store = objects.store()
    horizon = datetime.now(UTC) - HANDOFF_RETENTION
    by_run: dict[str, list[str]] = {}
    for info in store.list(RUNS_PREFIX):
        by_run.setdefault(info.key[len(RUNS_PREFIX) :].split("/", 1)[0], []).append(info.key)
    stale = []
    for run_id, keys in by_run.items():
        record = context.instance.get_run_record_by_id(run_id)
        ended = record.end_time if record is not None else None
        if record is None or (ended is not None and datetime.fromtimestamp(ended, UTC) < horizon):
            stale += keys
    store.delete_keys(stale)
    context.log.info(f"removed {len(stale)} handoffs of {len(by_run)} runs")
    return len(stale)


@dg.job(
    description="Compact the LanceDB scenes tables, keep their indexes fresh, and sweep old "
    "run handoffs."
)
def maintain_search_index() -> None:
    maintain_vector_tables()
    sweep_run_handoffs()


nightly_index_maintenance = dg.ScheduleDefinition(
    job=maintain_search_index,
    cron_schedule="0 3 * * *",
    name="nightly_index_maintenance",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
