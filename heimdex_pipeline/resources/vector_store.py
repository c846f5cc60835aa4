"""The LanceDB vector store: one `scenes_*` table per embedding model."""

from __future__ import annotations

import os
import re

import pyarrow as pa

# lancedb is imported where it is used: it takes 1.5 s, and every Dagster step process imports the
# code location, most of them without touching vectors.
os.environ.setdefault("LANCEDB_LOG", "error")

TABLE_PREFIX = "scenes"
# Query settings for the IVF_HNSW_SQ index, from benchmarks/vector_search.py: at 1M clustered
# 512-d rows they give recall@10 0.9995 at p50 5.1 ms (LanceDB's defaults: 0.414 at 2.8 ms). A
# table without a vector index is searched exactly and ignores them.
SEARCH_NPROBES = 16
SEARCH_EF = 512
SEARCH_REFINE_FACTOR = 5


def scenes_schema(dim: int) -> pa.Schema:
    """The row layout of a scenes table: one row per scene, a fixed-size float32 vector."""
    return pa.schema(
        [
            pa.field("scene_id", pa.string(), nullable=False),
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("scene_index", pa.int32(), nullable=False),
            pa.field("start_s", pa.float64(), nullable=False),
            pa.field("end_s", pa.float64(), nullable=False),
            pa.field("thumbnail_key", pa.string()),
            pa.field("model_id", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def table_name(model_id: str) -> str:
    """Vectors of different models never share a table: the model id is in the name."""
    if not re.fullmatch(r"[a-z0-9_]+", model_id):
        raise ValueError(f"model id {model_id!r} is not a valid table suffix")
    return f"{TABLE_PREFIX}_{model_id}"


def quote(value: str) -> str:
    """A SQL string literal for a LanceDB filter: the only way user text reaches a `where`."""
    if not isinstance(value, str):
        raise TypeError("filter values must be strings")
    if "\x00" in value:
        raise ValueError("filter values must not contain NUL")
    return "'" + value.replace("'", "''") + "'"


class VectorStore:
    """A LanceDB connection (a local folder or s3://…) and the scenes tables in it."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        self.uri = uri
        import lancedb

        self.db = lancedb.connect(uri, storage_options=storage_options or None)

    def table_names(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:  # list_tables pages its answer
            response = self.db.list_tables(page_token=token)
            names.extend(response.tables)
            token = response.page_token
            if not token:
                return sorted(names)

    def scenes_table(self, model_id: str, dim: int, create: bool = True):
        """The scenes table for this model, created empty if missing (and `create`)."""
        name = table_name(model_id)
        if name in self.table_names():
            table = self.db.open_table(name)
            width = table.schema.field("vector").type.list_size
            if width != dim:
                raise ValueError(f"table {name} holds {width}-d vectors, not {dim}-d")
            return table
        if not create:
            raise LookupError(f"no vector table {name}: index a video with this model first")
        return self.db.create_table(name, schema=scenes_schema(dim), exist_ok=True)


def replace_video_rows(table, video_id: str, rows: pa.Table) -> None:
    """One commit: the video's rows become exactly `rows` (readers see old or new, never both)."""
    (
        table.merge_insert("scene_id")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(f"video_id = {quote(video_id)}")
        .execute(rows)
    )


def nearest(table, query, where: str | None = None):
    """A cosine nearest-neighbour query on `vector`, tuned for our index, filtered before search."""
    builder = (
        table.search(query, vector_column_name="vector")
        .distance_type("cosine")
        .nprobes(SEARCH_NPROBES)
        .ef(SEARCH_EF)
        .refine_factor(SEARCH_REFINE_FACTOR)
    )
    return builder.where(where, prefilter=True) if where else builder


def index_columns(table) -> set[str]:
    return {column for index in table.list_indices() for column in index.columns}


def ensure_indexes(table, vector_index_min_rows: int) -> dict[str, object]:
    """A scalar index on video_id always; the vector index once the table is big enough."""
    built: dict[str, object] = {}
    columns = index_columns(table)
    rows = table.count_rows()
    if "video_id" not in columns and rows > 0:
        table.create_scalar_index("video_id", index_type="BTREE")
        built["video_id"] = "BTREE"
    if "vector" not in columns and rows >= vector_index_min_rows:
        from lancedb.index import IvfHnswSq

        table.create_index("vector", config=IvfHnswSq(distance_type="cosine"))
        built["vector"] = "IVF_HNSW_SQ"
    return built


def maintain(table, vector_index_min_rows: int) -> dict[str, object]:
    """Compact, fold new rows into the indexes, build what is missing."""
    table.optimize()
    return ensure_indexes(table, vector_index_min_rows)
