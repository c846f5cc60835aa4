"""search_index: this video's rows in the LanceDB scenes table, replaced as one commit."""

import time

import dagster as dg
import pyarrow as pa

from heimdex_pipeline.assets.embeddings import embeddings
from heimdex_pipeline.assets.failures import video_step
from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import scenes_of, set_state
from heimdex_pipeline.embeddings_io import parquet_to_vectors
from heimdex_pipeline.keys import vectors_key
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import (
    CatalogResource,
    ObjectStoreResource,
    PipelineResource,
    VectorStoreResource,
)
from heimdex_pipeline.resources.vector_store import (
    ensure_indexes,
    quote,
    replace_video_rows,
    scenes_schema,
    table_name,
)


@dg.asset(
    deps=[embeddings],
    partitions_def=videos,
    group_name="search",
    kinds={"lancedb"},
    description="The video's scenes in LanceDB; the video is `indexed` once all are there.",
)
def search_index(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
    pipeline: PipelineResource,
) -> dg.MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    with video_step(context, "search_index", catalog, objects, vectors):
        scene_ids, matrix, identity = parquet_to_vectors(
            objects.store().get_bytes(vectors_key(video_id))
        )
        with catalog.session() as session:
            by_id = {row.id: row for row in scenes_of(session, video_id)}
        if set(scene_ids) != set(by_id):
            raise RuntimeError(
                "the stored vectors do not match the video's scenes: re-run embeddings"
            )
        rows = pa.Table.from_pylist(
            [
                {
                    "scene_id": scene_id,
                    "video_id": video_id,
                    "scene_index": by_id[scene_id].index,
                    "start_s": by_id[scene_id].start_s,
                    "end_s": by_id[scene_id].end_s,
                    "thumbnail_key": by_id[scene_id].thumbnail_key,
                    "model_id": identity.model_id,
                    "vector": vector.tolist(),
                }
                for scene_id, vector in zip(scene_ids, matrix, strict=True)
            ],
            schema=scenes_schema(identity.dim),
        )
        table = vectors.store().scenes_table(identity.model_id, identity.dim)
        replace_video_rows(table, video_id, rows)
        built = ensure_indexes(table, pipeline.vector_index_min_rows)
        stored = table.count_rows(f"video_id = {quote(video_id)}")
        if stored != len(by_id):
            raise RuntimeError(
                f"{table_name(identity.model_id)} holds {stored} rows, expected {len(by_id)}"
            )
        with catalog.session() as session:
            set_state(session, video_id, VideoState.INDEXED)
        total = table.count_rows()
    return dg.MaterializeResult(
        metadata={
            "table": table_name(identity.model_id),
            "rows_for_video": stored,
            "table_rows": total,
            "indexes_built": dg.MetadataValue.json(built),
            "random_weights": identity.is_random,
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )
