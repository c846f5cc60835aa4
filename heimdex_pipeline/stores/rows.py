"""A video's rows in a LanceDB table (scenes, transcript lines, faces): replaced in one commit,
counted, removed and indexed for their filters, the same way in every table."""

from __future__ import annotations

import pyarrow as pa

from heimdex_pipeline.stores.filters import videos_filter


def replace_rows_of_videos(table, key: str, video_ids: list[str], rows: pa.Table) -> None:
    """One commit: these videos' rows (matched by the `key` column) become exactly `rows`;
    readers see old or new, never both; other videos' rows are untouched. No rows: removed."""
    if rows.num_rows == 0:
        table.delete(videos_filter(video_ids))
        return
    (
        table.merge_insert(key)
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(videos_filter(video_ids))
        .execute(rows)
    )


def rows_per_video(table, video_ids: list[str]) -> dict[str, int]:
    """How many rows the table holds for each of these videos."""
    found = table.search().where(videos_filter(video_ids)).select(["video_id"]).to_arrow()
    counts: dict[str, int] = {}
    for video_id in found.column("video_id").to_pylist():
        counts[video_id] = counts.get(video_id, 0) + 1
    return counts


def delete_rows(store, names: list[str], where: str) -> int:
    """Remove the rows matching `where` from each of these tables; how many went."""
    removed = 0
    for name in names:
        table = store.open(name)
        count = table.count_rows(where)
        if count:
            table.delete(where)
            removed += count
    return removed


def ensure_scalar_indexes(table) -> dict[str, object]:
    """Scalar indexes on video_id (deletes, counts) and owner (each library's pre-filter)."""
    built: dict[str, object] = {}
    columns = {column for index in table.list_indices() for column in index.columns}
    if table.count_rows() == 0:
        return built
    for column in ("video_id", "owner"):
        if column not in columns and column in table.schema.names:
            table.create_scalar_index(column, index_type="BTREE")
            built[column] = "BTREE"
    return built
