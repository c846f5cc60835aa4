"""Jobs: the per-video chain, and the vector-index maintenance that keeps search fast."""

import dagster as dg

from heimdex_pipeline.assets import ALL_ASSETS
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import PipelineResource, VectorStoreResource
from heimdex_pipeline.resources.vector_store import TABLE_PREFIX, maintain

index_video_job = dg.define_asset_job(
    "index_video",
    selection=dg.AssetSelection.assets(*ALL_ASSETS),
    partitions_def=videos,
    description="The whole chain for one video: probe → scenes → thumbnails → embeddings → index.",
)


@dg.op
def maintain_vector_tables(
    context: dg.OpExecutionContext, vectors: VectorStoreResource, pipeline: PipelineResource
) -> dict:
    """Compact every scenes table and (re)build its indexes once it is big enough."""
    store = vectors.store()
    report = {}
    for name in store.table_names():
        if name.startswith(TABLE_PREFIX + "_"):
            report[name] = maintain(store.db.open_table(name), pipeline.vector_index_min_rows)
            context.log.info(f"{name}: {report[name] or 'indexes up to date'}")
    return report


@dg.job(description="Compact the LanceDB scenes tables and keep their indexes fresh.")
def maintain_search_index() -> None:
    maintain_vector_tables()


nightly_index_maintenance = dg.ScheduleDefinition(
    job=maintain_search_index, cron_schedule="0 3 * * *", name="nightly_index_maintenance"
)
