"""The LanceDB vector store: one `scenes_*` table per embedding model."""

from __future__ import annotations

import os
import re
import threading
from datetime import timedelta

import pyarrow as pa

from heimdex_pipeline.settings import S3Settings
from heimdex_pipeline.stores.filters import quote, videos_filter
from heimdex_pipeline.stores.rows import (
    delete_rows,
    ensure_scalar_indexes,
    replace_rows_of_videos,
    rows_per_video,
)

# where the steps and search have always found them
__all__ = [
    "ensure_scalar_indexes",
    "quote",
    "replace_rows_of_videos",
    "rows_per_video",
    "videos_filter",
]

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
            pa.field("owner", pa.string(), nullable=False),
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

    def __init__(self, uri: str, s3: S3Settings | None = None, default_owner: str = "local"):
        self.uri = uri
        self._options = _storage_options(s3) if uri.startswith("s3://") else None
        self._db = None
        self._reading_db = None
        self._readers: dict[str, object] = {}
        self._readers_lock = threading.Lock()
        self.default_owner = default_owner  # whose rows a table from before owners holds

    def open(self, name: str, db=None):
        """An existing table, with the `owner` column every table has now (see `with_owner`),
        through `db` (the writing connection unless given)."""
        return with_owner((db or self.db).open_table(name), self.default_owner)

    @property
    def db(self):
        """The LanceDB connection, opened on first use (lancedb loads in 1.5 s)."""
        if self._db is None:
            import lancedb

            self._db = lancedb.connect(self.uri, storage_options=self._options)
        return self._db

    def reader(self, name: str, check=None):
        """An existing table to search, opened once and kept: its connection looks for a newer
        version before each query (any process's writes are seen, as with a table opened
        afresh), without the listing, open and schema reads a fresh handle costs each time.
        LookupError if there is no such table (looked for again on the next call); `check`
        is called with the table once, when it is opened."""
        table = self._readers.get(name)
        if table is not None:
            return table
        with self._readers_lock:
            if name not in self._readers:
                if self._reading_db is None:
                    import lancedb

                    self._reading_db = lancedb.connect(
                        self.uri,
                        storage_options=self._options,
                        read_consistency_interval=timedelta(0),
                    )
                try:
                    opened = self.open(name, self._reading_db)
                except (ValueError, FileNotFoundError) as error:  # "Table '…' was not found"
                    raise LookupError(f"no vector table {name}") from error
                if check is not None:
                    check(opened)
                self._readers[name] = opened
            return self._readers[name]

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
        """The scenes table for this model, created empty if missing (and `create`; else
        LookupError). A search opens it straight away, without listing every table."""
        name = table_name(model_id)
        if create and name not in self.table_names():
            return self.db.create_table(name, schema=scenes_schema(dim), exist_ok=True)
        try:
            table = self.open(name)
        except (ValueError, FileNotFoundError) as error:  # LanceDB: "Table '…' was not found"
            raise LookupError(
                f"no vector table {name}: index a video with this model first"
            ) from error
        return _of_width(table, name, dim)

    def scenes_reader(self, model_id: str, dim: int):
        """This model's scenes table to search (see `reader`); LookupError if missing."""
        name = table_name(model_id)
        try:
            return self.reader(name, check=lambda table: _of_width(table, name, dim))
        except LookupError as error:
            raise LookupError(f"{error}: index a video with this model first") from None

    def delete_video(self, video_id: str) -> int:
        """Remove a video's rows from every model's table (scenes, transcripts and faces); the
        number of rows removed."""
        from heimdex_pipeline.stores.faces import delete_video_faces
        from heimdex_pipeline.stores.transcripts import delete_video_lines

        removed = delete_video_lines(self, video_id) + delete_video_faces(self, video_id)
        return removed + delete_rows(self, self.scenes_tables(), videos_filter([video_id]))


def _of_width(table, name: str, dim: int):
    """The table, if its vectors are `dim`-d (else ValueError)."""
    width = table.schema.field("vector").type.list_size
    if width != dim:
        raise ValueError(f"table {name} holds {width}-d vectors, not {dim}-d")
    return table


def with_owner(table, default_owner: str):
    """The table, given the `owner` column if it was made before owners: its rows were all
    the default owner's (as the catalog's migration made their videos). One commit, once."""
    if "owner" not in table.schema.names:
        table.add_columns({"owner": quote(default_owner)})
    return table


def owner_filter(owner: str | None) -> str | None:
    """The pre-filter that keeps a search inside one owner's library (None: every library)."""
    return None if owner is None else f"owner = {quote(owner)}"


def all_of(*clauses: str | None) -> str | None:
    """Filter clauses joined with AND (None when there are none)."""
    given = [f"({c})" for c in clauses if c]
    return " AND ".join(given) or None


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


def replace_video_rows(table, video_id: str, rows: pa.Table) -> None:
    """One commit: the video's rows become exactly `rows`."""
    replace_rows_of_videos(table, "scene_id", [video_id], rows)


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
    """Scalar indexes always; the vector index once the table is big enough."""
    built = ensure_scalar_indexes(table)
    columns = index_columns(table)
    rows = table.count_rows()
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
