"""What is said, in LanceDB: one `transcripts_*` table per speech model, one row per line (the
part of a segment said inside one scene), with a native full-text index (BM25, an English
stemmer, positions for phrase queries) on its text.

Fresh rows are searched at once: LanceDB searches the rows the index has not folded in yet by
a flat scan beside it (tested in test_transcripts.py); `maintain` folds them in.
"""

from __future__ import annotations

import re

import pyarrow as pa

from heimdex_pipeline.stores.filters import videos_filter
from heimdex_pipeline.stores.rows import delete_rows, ensure_scalar_indexes, replace_rows_of_videos
from heimdex_pipeline.stores.rows import rows_per_video as lines_per_video

__all__ = ["lines_per_video"]

TABLE_PREFIX = "transcripts"


def transcripts_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("line_id", pa.string(), nullable=False),
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("owner", pa.string(), nullable=False),
            pa.field("scene_id", pa.string(), nullable=False),
            pa.field("scene_index", pa.int32(), nullable=False),
            pa.field("scene_start_s", pa.float64(), nullable=False),
            pa.field("scene_end_s", pa.float64(), nullable=False),
            pa.field("segment_index", pa.int32(), nullable=False),
            pa.field("start_s", pa.float64(), nullable=False),
            pa.field("end_s", pa.float64(), nullable=False),
            # the whole sentence (indexed: a phrase across a cut matches on both sides of it)
            pa.field("text", pa.string(), nullable=False),
            pa.field("line_text", pa.string(), nullable=False),  # what is said in this scene
            pa.field("words", pa.string(), nullable=False),  # JSON [[word, start_s, end_s], ...]
            pa.field("language", pa.string()),
            pa.field("model_id", pa.string(), nullable=False),
        ]
    )


def transcripts_table_name(model_id: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", model_id):
        raise ValueError(f"speech model id {model_id!r} is not a valid table suffix")
    return f"{TABLE_PREFIX}_{model_id}"


def transcript_tables(store) -> list[str]:
    return [name for name in store.table_names() if name.startswith(TABLE_PREFIX + "_")]


def transcripts_table(store, model_id: str, create: bool = True):
    """This speech model's table, created (with its full-text index) if missing."""
    name = transcripts_table_name(model_id)
    if name in store.table_names():
        return store.open(name)
    if not create:
        raise LookupError(f"no transcripts table {name}: index a video with this model first")
    table = store.db.create_table(name, schema=transcripts_schema(), exist_ok=True)
    ensure_text_index(table)
    return table


def ensure_text_index(table, language: str = "English") -> bool:
    """The full-text index on `text` (and scalar ones on video_id and owner); True if one was
    built."""
    from lancedb.index import FTS

    columns = {column for index in table.list_indices() for column in index.columns}
    built = False
    if "text" not in columns:
        table.create_index(
            "text",
            config=FTS(
                language=language,
                stem=True,
                with_position=True,
                remove_stop_words=False,
                lower_case=True,
                ascii_folding=True,
            ),
        )
        built = True
    return bool(ensure_scalar_indexes(table)) or built


def replace_lines_of_videos(table, video_ids: list[str], rows: pa.Table) -> None:
    """One commit: these videos' lines become exactly `rows` (none: they are removed)."""
    replace_rows_of_videos(table, "line_id", video_ids, rows)


def delete_video_lines(store, video_id: str) -> int:
    """Remove a video's lines from every speech model's table; how many were removed."""
    return delete_rows(store, transcript_tables(store), videos_filter([video_id]))
