"""The LanceDB scenes tables, on a local folder and on the loopback S3 server."""

import copy
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from heimdex_pipeline.stores.vectors import (
    VectorStore,
    ensure_indexes,
    index_columns,
    nearest,
    quote,
    replace_video_rows,
    scenes_schema,
)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def vector_store(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    if request.param == "local":
        return VectorStore(str(tmp_path / "lancedb"))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    from heimdex_pipeline.stores.objects import S3ObjectStore
    from heimdex_pipeline_tests.conftest import s3_settings

    S3ObjectStore(s3_settings(endpoint), bucket).put_bytes("x", b"")  # makes the bucket
    return VectorStore(f"s3://{bucket}/lancedb", s3_settings(endpoint))


def rows(video_id: str, count: int, dim: int = 8, seed: int = 0) -> pa.Table:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return pa.Table.from_pylist(
        [
            {
                "scene_id": f"{video_id}-{i}",
                "video_id": video_id,
                "owner": "local",
                "scene_index": i,
                "start_s": float(i),
                "end_s": float(i + 1),
                "thumbnail_key": f"thumbnails/{video_id}/{i}.webp",
                "model_id": "m",
                "vector": vectors[i].tolist(),
            }
            for i in range(count)
        ],
        schema=scenes_schema(dim),
    )


def test_the_scenes_table_is_created_with_its_schema(vector_store: VectorStore):
    table = vector_store.scenes_table("tiny_8_abc", 8)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 8)
    assert {
        "scene_id",
        "video_id",
        "scene_index",
        "start_s",
        "end_s",
        "thumbnail_key",
        "model_id",
    } <= set(table.schema.names)
    assert vector_store.table_names() == ["scenes_tiny_8_abc"]


def test_replacing_a_video_leaves_exactly_its_new_rows(vector_store: VectorStore):
    table = vector_store.scenes_table("tiny_8_abc", 8)
    replace_video_rows(table, "a", rows("a", 5))
    replace_video_rows(table, "b", rows("b", 2))
    replace_video_rows(table, "a", rows("a", 5, seed=1))
    replace_video_rows(table, "a", rows("a", 3, seed=2))
    assert table.count_rows("video_id = 'a'") == 3
    assert table.count_rows("video_id = 'b'") == 2
    assert table.count_rows() == 5


def test_each_model_gets_its_own_table_and_dimensions_cannot_mix(vector_store: VectorStore):
    vector_store.scenes_table("tiny_8_abc", 8)
    vector_store.scenes_table("vit_b_32_512_def", 512)
    assert vector_store.table_names() == ["scenes_tiny_8_abc", "scenes_vit_b_32_512_def"]
    with pytest.raises(ValueError, match="8-d"):
        vector_store.scenes_table("tiny_8_abc", 16)
    with pytest.raises(LookupError):
        vector_store.scenes_table("never_indexed", 8, create=False)


def test_a_kept_search_table_sees_another_writers_rows_at_once(vector_store: VectorStore):
    """Search keeps its tables open (`VectorStore.reader`): a write through another connection
    (another process: the run that indexed a video) is seen by the next query, not after a
    reopen; a table that is not there yet is found once it is."""
    writer, other_reader = (copy.copy(vector_store) for _ in range(2))
    for store in (writer, other_reader):  # the same place, connections of their own
        store._db, store._reading_db, store._readers = None, None, {}
    with pytest.raises(LookupError, match="index a video"):
        vector_store.scenes_reader("tiny_8_abc", 8)
    replace_video_rows(writer.scenes_table("tiny_8_abc", 8), "a", rows("a", 5))
    kept = vector_store.scenes_reader("tiny_8_abc", 8)
    assert kept.count_rows() == 5
    table = writer.scenes_table("tiny_8_abc", 8)
    replace_video_rows(table, "a", rows("a", 3, seed=1))
    replace_video_rows(table, "b", rows("b", 2, seed=2))
    assert vector_store.scenes_reader("tiny_8_abc", 8) is kept
    assert kept.count_rows("video_id = 'a'") == 3 and kept.count_rows() == 5
    query = rows("b", 2, seed=2)["vector"][1].as_py()
    assert nearest(kept, query).limit(1).to_list()[0]["scene_id"] == "b-1"
    with pytest.raises(ValueError, match="8-d"):
        other_reader.scenes_reader("tiny_8_abc", 16)


def test_a_quoted_value_cannot_widen_a_filter(vector_store: VectorStore):
    table = vector_store.scenes_table("tiny_8_abc", 8)
    replace_video_rows(table, "a", rows("a", 4))
    hostile = "' OR 1=1 --"
    assert quote(hostile) == "''' OR 1=1 --'"
    assert table.count_rows(f"video_id = {quote(hostile)}") == 0
    assert table.count_rows(f"video_id = {quote('a')}") == 4


def test_indexes_wait_for_enough_rows(tmp_path: Path):
    table = VectorStore(str(tmp_path / "lancedb")).scenes_table("tiny_8_abc", 8)
    replace_video_rows(table, "a", rows("a", 300))
    built = ensure_indexes(table, vector_index_min_rows=10_000)
    assert built == {"video_id": "BTREE", "owner": "BTREE"}
    assert ensure_indexes(table, vector_index_min_rows=10_000) == {}
    assert ensure_indexes(table, vector_index_min_rows=256) == {"vector": "IVF_HNSW_SQ"}


def test_the_tuned_query_finds_each_row_through_the_index_and_filters(tmp_path: Path):
    table = VectorStore(str(tmp_path / "lancedb")).scenes_table("tiny_8_abc", 8)
    replace_video_rows(table, "a", rows("a", 300))
    replace_video_rows(table, "b", rows("b", 20, seed=5))
    ensure_indexes(table, vector_index_min_rows=256)
    assert "vector" in {c for i in table.list_indices() for c in i.columns}
    probes = rows("a", 300).to_pylist()[:20]
    for probe in probes:
        (hit,) = nearest(table, probe["vector"]).limit(1).to_list()
        assert hit["scene_id"] == probe["scene_id"]
    only_b = nearest(table, probes[0]["vector"], f"video_id = {quote('b')}").limit(5).to_list()
    assert [hit["video_id"] for hit in only_b] == ["b"] * 5


def test_the_maintenance_job_builds_the_index_then_folds_new_rows_into_it(make_settings):
    from heimdex_pipeline.pipeline.definitions import build_definitions
    from heimdex_pipeline.pipeline.instance import dagster_instance

    settings = make_settings(HEIMDEX_VECTOR_INDEX_MIN_ROWS="256")
    job = build_definitions(settings).resolve_job_def("maintain_search_index")
    instance = dagster_instance(settings)

    def table():  # as a new reader sees it
        return VectorStore(settings.lancedb_uri).scenes_table("tiny_8_abc", 8)

    def unindexed_rows() -> int:
        (index,) = [i for i in table().list_indices() if i.columns == ["vector"]]
        return table().index_stats(index.name).num_unindexed_rows

    replace_video_rows(table(), "a", rows("a", 300))
    assert index_columns(table()) == set()
    assert job.execute_in_process(instance=instance).success
    assert index_columns(table()) == {"video_id", "owner", "vector"}
    assert unindexed_rows() == 0

    replace_video_rows(table(), "b", rows("b", 40, seed=3))
    assert unindexed_rows() == 40
    assert job.execute_in_process(instance=instance).success
    assert unindexed_rows() == 0
    probe = rows("b", 40, seed=3).to_pylist()[7]
    (hit,) = nearest(table(), probe["vector"]).limit(1).to_list()
    assert hit["scene_id"] == probe["scene_id"]


@pytest.mark.slow  # seconds of writes raced by reads
def test_a_reader_never_sees_old_and_new_rows_of_a_video_together(tmp_path: Path):
    """A video re-indexed again and again (each time another number of scenes, new scene ids)
    while another connection reads it: every read holds exactly one generation, complete, and
    the other video's rows untouched."""
    import threading
    from datetime import timedelta

    import lancedb

    store = VectorStore(str(tmp_path / "lancedb"))
    table = store.scenes_table("tiny_8_abc", 8)
    replace_video_rows(table, "b", rows("b", 2))

    def generation(number: int) -> pa.Table:
        data = rows("a", 2 + number % 3, seed=number).to_pylist()
        for row in data:
            row["scene_id"], row["model_id"] = f"a-{number}-{row['scene_index']}", f"g{number}"
        return pa.Table.from_pylist(data, schema=scenes_schema(8))

    replace_video_rows(table, "a", generation(0))
    done, seen, wrong = threading.Event(), [], []

    def read() -> None:
        reader = lancedb.connect(store.uri, read_consistency_interval=timedelta(0))
        mine = reader.open_table(table.name)
        while not done.is_set():
            found = mine.search().select(["video_id", "model_id"]).limit(None).to_list()
            generations = {r["model_id"] for r in found if r["video_id"] == "a"}
            of_a = sum(r["video_id"] == "a" for r in found)
            of_b = sum(r["video_id"] == "b" for r in found)
            seen.append(generations)
            whole = len(generations) == 1 and of_a == 2 + int(min(generations)[1:]) % 3
            if not whole or of_b != 2:
                wrong.append((generations, of_a, of_b))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(1, 25):
            replace_video_rows(table, "a", generation(number))
    finally:
        done.set()
        reader.join(timeout=60)
    assert wrong == []
    assert len({g for generations in seen for g in generations}) >= 3, "the reads overlapped"
