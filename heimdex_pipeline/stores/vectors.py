"""The LanceDB vector store: one `scenes_*` table per embedding model."""

from __future__ import annotations

import os
import re

import pyarrow as pa

from heimdex_pipeline.settings import S3Settings
from heimdex_pipeline.stores.filters import quote, videos_filter

__all__ = ["quote", "videos_filter"]  # where the steps and search have always found them

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


class VectorStore:
    """A LanceDB connection (a local folder or s3://…) and the scenes tables in it."""

    def __init__(self, uri: str, s3: S3Settings | None = None):
        self.uri = uri
        self._options = _storage_options(s3) if uri.startswith("s3://") else None
        self._db = None

    @property
    def db(self):
        """The LanceDB connection, opened on first use (lancedb loads in 1.5 s)."""
        if self._db is None:
            import lancedb

            self._db = lancedb.connect(self.uri, storage_options=self._options)
        return self._db

    def table_names(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:  # list_tables pages its answer
            try:
                response = self.db.list_tables(page_token=token)
            except ValueError as error:  # a bucket no one has written to yet holds no table
                if "NoSuchBucket" in str(error):
                    return []
                raise
            names.extend(response.tables)
            token = response.page_token
            if not token:
                return sorted(names)

    def scenes_tables(self) -> list[str]:
        """The names of every model's scenes table."""
        return [name for name in self.table_names() if name.startswith(TABLE_PREFIX + "_")]

    def has_table(self, model_id: str) -> bool:
        return table_name(model_id) in self.table_names()

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

    def delete_video(self, video_id: str) -> int:
        """Remove a video's rows from every model's table (scenes, transcripts and faces); the
        number of rows removed."""
        from heimdex_pipeline.stores.faces import delete_video_faces
        from heimdex_pipeline.stores.transcripts import delete_video_lines

        removed = delete_video_lines(self, video_id) + delete_video_faces(self, video_id)
        for name in self.scenes_tables():
            table = self.db.open_table(name)
            where = f"video_id = {quote(video_id)}"
            count = table.count_rows(where)
            if count:
                table.delete(where)
                removed += count
        return removed


def _storage_options(s3: S3Settings | None) -> dict[str, str] | None:
    if s3 is None:
        return None
    return {
        "aws_access_key_id": s3.access_key,
        "aws_secret_access_key": s3.secret_key.get_secret_value(),
        "aws_endpoint": s3.endpoint_url,
        "aws_region": s3.region,
        "allow_http": "false" if s3.secure else "true",
    }


def replace_rows_of_videos(table, video_ids: list[str], rows: pa.Table) -> None:
    """One commit: these videos' rows become exactly `rows` (readers see old or new, never
    both; other videos' rows are untouched)."""
    (
        table.merge_insert("scene_id")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(videos_filter(video_ids))
        .execute(rows)
    )


def replace_video_rows(table, video_id: str, rows: pa.Table) -> None:
    """One commit: the video's rows become exactly `rows`."""
    replace_rows_of_videos(table, [video_id], rows)


def rows_per_video(table, video_ids: list[str]) -> dict[str, int]:
    """How many rows the table holds for each of these videos."""
    found = table.search().where(videos_filter(video_ids)).select(["video_id"]).to_arrow()
    counts: dict[str, int] = {}
    for video_id in found.column("video_id").to_pylist():
        counts[video_id] = counts.get(video_id, 0) + 1
    return counts


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


def table_stats(table) -> dict[str, int]:
    """A vector table's rows, version, fragments and indexes (for the library's statistics)."""
    stats = table.stats()
    fragments = stats.get("fragment_stats", {})
    return {
        "rows": int(stats.get("num_rows", 0)),
        "version": int(table.version),
        "fragments": int(fragments.get("num_fragments", 0)),
        "small_fragments": int(fragments.get("num_small_fragments", 0)),
        "indexes": int(stats.get("num_indices", 0)),
    }
