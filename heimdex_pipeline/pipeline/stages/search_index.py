"""search_index: this video's rows in the LanceDB scenes table, replaced as one commit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import (
    activate_complete_models,
    get_video,
    record_vectors,
    scenes_of,
    set_state,
)
from heimdex_pipeline.clip.model import ModelIdentity
from heimdex_pipeline.clip.vectors_io import parquet_to_vectors
from heimdex_pipeline.pipeline.stages.base import (
    Outcome,
    Stage,
    StageContext,
    StageResult,
    check_committed,
    prepare_each,
)
from heimdex_pipeline.stores.keys import vectors_key
from heimdex_pipeline.stores.vectors import (
    ensure_indexes,
    replace_rows_of_videos,
    rows_per_video,
    scenes_schema,
    table_name,
)


@dataclass
class _Prepared:
    rows: pa.Table
    identity: ModelIdentity
    scene_count: int
    seconds: float


def _prepare(context: StageContext, video_id: str) -> _Prepared:
    """The video's table rows, from its stored vectors and its scene rows (which must agree)."""
    started = time.perf_counter()
    scene_ids, matrix, identity = parquet_to_vectors(
        context.stores.objects.get_bytes(vectors_key(video_id))
    )
    with context.stores.catalog.session() as session:
        by_id = {row.id: row for row in scenes_of(session, video_id)}
        owner = get_video(session, video_id).owner
    if set(scene_ids) != set(by_id):
        raise RuntimeError("the stored vectors do not match the video's scenes: re-run embeddings")
    rows = pa.Table.from_pylist(
        [
            {
                "scene_id": scene_id,
                "video_id": video_id,
                "owner": owner,
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
    return _Prepared(rows, identity, len(by_id), time.perf_counter() - started)


def index_videos(context: StageContext, video_ids: list[str]) -> Iterator[tuple[str, Outcome]]:
    """Make each model's table hold exactly these videos' scenes, in one commit per table (a
    reader sees every video's old rows or every video's new ones); then they are `indexed`."""
    prepared, errors = prepare_each(video_ids, lambda video_id: _prepare(context, video_id))
    yield from errors
    by_model: dict[str, list[str]] = {}
    for video_id, ready in prepared.items():
        by_model.setdefault(ready.identity.model_id, []).append(video_id)
    for model_id, members in by_model.items():
        started = time.perf_counter()
        identity = prepared[members[0]].identity
        try:
            table = context.stores.vectors.scenes_table(model_id, identity.dim)
            replace_rows_of_videos(
                table, "scene_id", members, pa.concat_tables(prepared[v].rows for v in members)
            )
            built = ensure_indexes(table, context.pipeline.vector_index_min_rows)
            stored = rows_per_video(table, members)
            total = table.count_rows()
        except Exception as error:  # the commit is all or nothing: so is the outcome
            for video_id in members:
                yield video_id, error
            continue
        shared = (time.perf_counter() - started) / len(members)
        for video_id in members:
            ready = prepared[video_id]
            try:
                check_committed(table_name(model_id), stored, video_id, ready.scene_count, "rows")
                with context.stores.catalog.session() as session:
                    record_vectors(
                        session, video_id, model_id, identity.as_dict(), ready.scene_count
                    )
                    set_state(session, video_id, VideoState.INDEXED)
                    activated = activate_complete_models(session)
            except Exception as error:
                yield video_id, error
                continue
            yield (
                video_id,
                StageResult(
                    metadata={
                        "table": table_name(model_id),
                        "rows_for_video": ready.scene_count,
                        "table_rows": total,
                        "videos_in_commit": len(members),
                        "indexes_built": dg.MetadataValue.json(built),
                        "search_model_activated": bool(activated),
                        "random_weights": identity.is_random,
                        "seconds": dg.MetadataValue.float(round(ready.seconds + shared, 3)),
                    }
                ),
            )


SEARCH_INDEX = Stage(
    reads=("embeddings",),
    asset="search_index",
    work=index_videos,
    description="The video's scenes in LanceDB; the video is `indexed` once all are there.",
    group="search",
    kinds=frozenset({"lancedb"}),
)
