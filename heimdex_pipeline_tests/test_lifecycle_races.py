"""A video's life when people act while its run is going: a deleted video stays deleted, and
nothing the run makes of it afterwards survives."""

from __future__ import annotations

import dataclasses

import pytest

from heimdex_pipeline.catalog.models import Scene, Video, VideoState
from heimdex_pipeline.pipeline import stages
from heimdex_pipeline.pipeline.local_runs import delete_videos, index_paths
from heimdex_pipeline_tests.conftest import stores_of

pytestmark = pytest.mark.slow


def left_of(stores, video_id: str) -> list[str]:
    """Everything of the video still in any store (its row aside)."""
    found = [info.key for info in stores.objects.list("") if video_id in info.key]
    with stores.catalog.session() as session:
        found += [s.id for s in session.query(Scene).filter(Scene.video_id == video_id)]
    for name in stores.vectors.scenes_tables():
        table = stores.vectors.db.open_table(name)
        found += [f"{name} row"] * table.count_rows(f"video_id = '{video_id}'")
    return found


@pytest.mark.parametrize("during", ["thumbnails", "search_index"])
def test_a_video_deleted_while_its_run_is_going_stays_deleted(
    make_settings, sample_videos, monkeypatch, during
):
    settings = make_settings()
    deleted: list[str] = []

    def delete_first_then(work):
        def wrapped(context, video_ids):
            assert video_ids, "no video reached the stage"
            victim = video_ids[0]
            assert delete_videos([victim], settings) == []  # `heimdex delete`, mid-run
            deleted.append(victim)
            yield from work(context, video_ids)

        return wrapped

    monkeypatch.setattr(
        stages,
        "STAGES",
        [
            dataclasses.replace(s, work=delete_first_then(s.work)) if s.asset == during else s
            for s in stages.STAGES
        ],
    )
    outcomes = index_paths([sample_videos / "bikes.mp4", sample_videos / "realshort.mp4"], settings)
    assert deleted, [(o.state, o.error) for o in outcomes]
    (victim,) = deleted
    stores = stores_of(settings)
    with stores.catalog.session() as session:
        states = {v.id: v.state for v in session.query(Video)}
    assert states[victim] is VideoState.DELETED, "the run brought a deleted video back"
    assert left_of(stores, victim) == [], "what the run made after the delete stayed"
    (other,) = [o for o in outcomes if o.video_id != victim]
    assert states[other.video_id] is VideoState.INDEXED
