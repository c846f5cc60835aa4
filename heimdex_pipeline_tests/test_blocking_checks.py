"""Every check, driven to fail by a real broken output in the real stores.

Each case damages one video's output just after its stage wrote it and before the stage's checks
read it (the moment a torn write, a stray process or a bad disk would strike), in a batch of two
videos. A blocking check must stop that video alone: its downstream stages never run for it, it
ends `failed` naming the check, and nothing of it is left in any store, while the other video of
the batch is indexed. The non-blocking check reports and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import update

from heimdex_pipeline.catalog.models import Video
from heimdex_pipeline.catalog.video_ids import source_uri_for, video_id_for
from heimdex_pipeline.catalog.videos import scenes_of
from heimdex_pipeline.clip.vectors_io import parquet_to_vectors, vectors_to_parquet
from heimdex_pipeline.pipeline import checks
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.keys import DERIVED_PREFIXES, sidecar_prefix, vectors_key
from heimdex_pipeline.stores.vectors import quote
from heimdex_pipeline_tests.conftest import stores_of
from heimdex_pipeline_tests.media_files import copy_with_name

pytestmark = pytest.mark.slow

STAGES = ["raw_videos", "scenes", "thumbnails", "embeddings", "search_index"]


def _first_scene(stores: Stores, video_id: str):
    with stores.catalog.session() as session:
        return scenes_of(session, video_id)[0]


def _scenes_table(stores: Stores, video_id: str):
    _, _, identity = parquet_to_vectors(stores.objects.get_bytes(vectors_key(video_id)))
    return stores.vectors.scenes_table(identity.model_id, identity.dim, create=False)


def stretch_the_duration(stores: Stores, video_id: str) -> None:
    with stores.catalog.session() as session:
        session.execute(update(Video).where(Video.id == video_id).values(duration_s=99.0))


def delete_a_thumbnail(stores: Stores, video_id: str) -> None:
    stores.objects.delete(_first_scene(stores, video_id).thumbnail_key)


def garble_a_thumbnail(stores: Stores, video_id: str) -> None:
    key = _first_scene(stores, video_id).thumbnail_key
    stores.objects.put_bytes(key, stores.objects.get_bytes(key)[:40], "image/jpeg")


def double_the_vectors(stores: Stores, video_id: str) -> None:
    key = vectors_key(video_id)
    scene_ids, matrix, identity = parquet_to_vectors(stores.objects.get_bytes(key))
    stores.objects.put_bytes(key, vectors_to_parquet(scene_ids, matrix * 2, identity))


def drop_a_vector_row(stores: Stores, video_id: str) -> None:
    scene = _first_scene(stores, video_id)
    _scenes_table(stores, video_id).delete(f"scene_id = {quote(scene.id)}")


def duplicate_a_vector_row(stores: Stores, video_id: str) -> None:
    table = _scenes_table(stores, video_id)
    row = table.search().where(f"video_id = {quote(video_id)}").limit(1).to_arrow()
    table.add(row.select(table.schema.names).cast(table.schema))


def add_a_stray_sidecar(stores: Stores, video_id: str) -> None:
    stores.objects.put_bytes(f"{sidecar_prefix(video_id)}stray.json", b"{}", "application/json")


BLOCKING = [
    ("scenes_tile_the_video", stretch_the_duration, "last scene ends at"),
    ("thumbnails_exist_and_decode", delete_a_thumbnail, "is not in the store"),
    ("thumbnails_exist_and_decode", garble_a_thumbnail, "does not decode"),
    ("embeddings_are_unit_vectors", double_the_vectors, "not 1"),
    ("search_index_one_row_per_scene", drop_a_vector_row, "distinct rows for"),
    ("search_index_one_row_per_scene", duplicate_a_vector_row, "1 duplicate rows"),
]


def _damage_before(
    monkeypatch, check_name: str, damage: Callable[[Stores, str], None], victim: str
) -> None:
    """Make `damage` strike the victim's output just before `check_name` reads it."""

    def wrap(check: checks.Check) -> checks.Check:
        if check.name != check_name:
            return check

        def evaluate(video_id, stores, sampling):
            if video_id == victim:
                damage(stores, video_id)
            return check.evaluate(video_id, stores, sampling)

        return dataclasses.replace(check, evaluate=evaluate)

    monkeypatch.setattr(checks, "ALL_CHECKS", [wrap(c) for c in checks.ALL_CHECKS])


def _index_two(sample_videos: Path, settings, monkeypatch, check_name, damage):
    folder = Path(settings.home) / "in"
    paths = [
        copy_with_name(sample_videos / "realshort.mp4", folder, "victim.mp4"),
        copy_with_name(sample_videos / "counter.mp4", folder, "bystander.mp4"),
    ]
    victim = video_id_for(source_uri_for(paths[0]))
    _damage_before(monkeypatch, check_name, damage, victim)
    outcomes = {Path(o.source).name: o for o in index_paths(paths, settings)}
    return outcomes["victim.mp4"], outcomes["bystander.mp4"]


def _materialized_stages(settings, video_id: str) -> set[str]:
    instance = dagster_instance(settings)
    return {
        stage
        for stage in STAGES
        if instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(stage), asset_partitions=[video_id]),
            limit=1,
        ).records
    }


def _leftovers(stores: Stores, video_id: str) -> list[str]:
    with stores.catalog.session() as session:
        left = [f"scene row {s.id}" for s in scenes_of(session, video_id)]
    left += [
        info.key
        for prefix in DERIVED_PREFIXES
        for info in stores.objects.list(f"{prefix}/")
        if video_id in info.key
    ]
    for name in stores.vectors.scenes_tables():
        table = stores.vectors.db.open_table(name)
        left += [f"vector row in {name}"] * table.count_rows(f"video_id = {quote(video_id)}")
    return left


@pytest.mark.parametrize(
    ("check_name", "damage", "reason"),
    BLOCKING,
    ids=[damage.__name__ for _, damage, _ in BLOCKING],
)
def test_a_blocking_check_fails_its_video_alone_and_leaves_nothing(
    sample_videos, make_settings, monkeypatch, check_name, damage, reason
):
    settings = make_settings()
    victim, bystander = _index_two(sample_videos, settings, monkeypatch, check_name, damage)

    assert bystander.state == "indexed", bystander.error
    assert _materialized_stages(settings, bystander.video_id) == set(STAGES)
    assert victim.state == "failed"
    assert f"check {check_name} failed" in victim.error and reason in victim.error
    stage = next(c.asset for c in checks.ALL_CHECKS if c.name == check_name)
    downstream = set(STAGES[STAGES.index(stage) + 1 :])
    assert not _materialized_stages(settings, victim.video_id) & downstream
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        row = session.get(Video, victim.video_id)
        assert row.state.value == "failed" and check_name in row.error_text
    assert _leftovers(stores, victim.video_id) == []
    _assert_check_result(settings, stage, check_name, victim.video_id, passed=False)
    _assert_check_result(settings, stage, check_name, bystander.video_id, passed=True)


def _assert_check_result(settings, stage: str, check_name: str, video_id: str, passed: bool):
    """The run's event log holds this check's evaluation for this video, passed or not."""
    instance = dagster_instance(settings)
    found = []
    for run in instance.get_runs():
        for record in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records:
            data = record.event_log_entry.dagster_event.event_specific_data
            if (
                data.asset_key == dg.AssetKey(stage)
                and data.check_name == check_name
                and data.partition == video_id
            ):
                found.append(data.passed)
    assert found and found[-1] is passed, (check_name, video_id, found)


def test_the_non_blocking_check_reports_a_stray_sidecar_and_changes_nothing(
    sample_videos, make_settings, monkeypatch
):
    settings = make_settings()
    victim, bystander = _index_two(
        sample_videos, settings, monkeypatch, "sidecars_match_catalog", add_a_stray_sidecar
    )
    assert victim.state == "indexed" and bystander.state == "indexed"
    assert _materialized_stages(settings, victim.video_id) == set(STAGES)
    _assert_check_result(settings, "scenes", "sidecars_match_catalog", victim.video_id, False)
    _assert_check_result(settings, "scenes", "sidecars_match_catalog", bystander.video_id, True)
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        assert session.get(Video, victim.video_id).error_text is None


def test_a_source_that_turns_bad_on_reindex_leaves_nothing_of_its_old_version(
    sample_videos, make_settings
):
    settings = make_settings()
    path = copy_with_name(sample_videos / "realshort.mp4", Path(settings.home) / "in", "turns.mp4")
    (first,) = index_paths([path], settings)
    assert first.state == "indexed" and first.scenes
    stores = stores_of(settings)
    assert _leftovers(stores, first.video_id)  # derived outputs exist
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 4000)
    (second,) = index_paths([path], settings)
    assert second.video_id == first.video_id
    assert second.state == "failed" and "turns.mp4" in second.error
    assert _leftovers(stores, first.video_id) == []
    table_rows = sum(
        stores.vectors.db.open_table(name).count_rows() for name in stores.vectors.scenes_tables()
    )
    assert table_rows == 0
