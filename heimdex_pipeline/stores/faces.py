"""Faces in LanceDB: one `faces_<model id>` table per face model, one row per face seen in a
scene (video, scene, time, box, descriptor, crop key), searched by Euclidean distance (what
dlib's descriptors are made for: under 0.6 is usually the same person)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from heimdex_pipeline.stores.filters import quote, videos_filter
from heimdex_pipeline.stores.rows import delete_rows, replace_rows_of_videos
from heimdex_pipeline.stores.rows import rows_per_video as faces_per_video

__all__ = ["faces_per_video"]

TABLE_PREFIX = "faces"


def faces_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("face_id", pa.string(), nullable=False),
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("owner", pa.string(), nullable=False),
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
        return store.open(name)
    if not create:
        return None
    return store.db.create_table(name, schema=faces_schema(dim), exist_ok=True)


def replace_faces_of_videos(table, video_ids: list[str], rows: pa.Table) -> None:
    """One commit: these videos' faces become exactly `rows` (none: they are removed)."""
    replace_rows_of_videos(table, "face_id", video_ids, rows)


def delete_faces(store, face_ids: list[str]) -> int:
    """Remove these faces from every face table; how many rows went."""
    removed = 0
    for start in range(0, len(face_ids), 500):
        where = f"face_id IN ({', '.join(quote(f) for f in face_ids[start : start + 500])})"
        removed += delete_rows(store, face_tables(store), where)
    return removed


def delete_video_faces(store, video_id: str) -> int:
    return delete_rows(store, face_tables(store), videos_filter([video_id]))


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
