"""Faces in LanceDB: one `faces_<model id>` table per face model, one row per face seen in a
scene (video, scene, time, box, descriptor, crop key), searched by Euclidean distance (what
dlib's descriptors are made for: under 0.6 is usually the same person)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from heimdex_pipeline.stores.filters import quote, videos_filter

TABLE_PREFIX = "faces"


def faces_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("face_id", pa.string(), nullable=False),
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("scene_id", pa.string(), nullable=False),
            pa.field("scene_index", pa.int32(), nullable=False),
            pa.field("time_s", pa.float64(), nullable=False),
            pa.field("box", pa.list_(pa.int32(), 4), nullable=False),  # x, y, w, h in the frame
            pa.field("frame_w", pa.int32(), nullable=False),
            pa.field("frame_h", pa.int32(), nullable=False),
            pa.field("crop_key", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def faces_table_name(model_id: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", model_id):
        raise ValueError(f"face model id {model_id!r} is not a valid table suffix")
    return f"{TABLE_PREFIX}_{model_id}"


def face_tables(store) -> list[str]:
    return [name for name in store.table_names() if name.startswith(TABLE_PREFIX + "_")]


def faces_table(store, model_id: str, dim: int, create: bool = True):
    """This face model's table, created if missing (None if missing and not `create`)."""
    name = faces_table_name(model_id)
    if name in store.table_names():
        return store.db.open_table(name)
    if not create:
        return None
    return store.db.create_table(name, schema=faces_schema(dim), exist_ok=True)


def replace_faces_of_videos(table, video_ids: list[str], rows: pa.Table) -> None:
    """One commit: these videos' faces become exactly `rows` (none: they are removed)."""
    if rows.num_rows == 0:
        table.delete(videos_filter(video_ids))
        return
    (
        table.merge_insert("face_id")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(videos_filter(video_ids))
        .execute(rows)
    )


def faces_per_video(table, video_ids: list[str]) -> dict[str, int]:
    found = table.search().where(videos_filter(video_ids)).select(["video_id"]).to_arrow()
    counts: dict[str, int] = {}
    for video_id in found.column("video_id").to_pylist():
        counts[video_id] = counts.get(video_id, 0) + 1
    return counts


def delete_faces(store, face_ids: list[str]) -> int:
    """Remove these faces from every face table; how many rows went."""
    removed = 0
    for start in range(0, len(face_ids), 500):
        where = f"face_id IN ({', '.join(quote(f) for f in face_ids[start : start + 500])})"
        for name in face_tables(store):
            table = store.db.open_table(name)
            count = table.count_rows(where)
            if count:
                table.delete(where)
                removed += count
    return removed


def delete_video_faces(store, video_id: str) -> int:
    removed = 0
    where = videos_filter([video_id])
    for name in face_tables(store):
        table = store.db.open_table(name)
        count = table.count_rows(where)
        if count:
            table.delete(where)
            removed += count
    return removed


def nearest_faces(table, descriptor: np.ndarray, limit: int, where: str | None = None) -> list:
    """The `limit` faces nearest a descriptor, each with its exact Euclidean `distance`."""
    query = table.search(np.asarray(descriptor, np.float32), vector_column_name="vector")
    query = query.distance_type("l2").limit(limit)
    if where:
        query = query.where(where, prefilter=True)
    rows = query.to_list()
    for row in rows:  # LanceDB's l2 is squared: say the distance dlib's threshold is about
        row["distance"] = float(
            np.linalg.norm(np.asarray(row["vector"], np.float32) - np.asarray(descriptor))
        )
    return sorted(rows, key=lambda row: row["distance"])
