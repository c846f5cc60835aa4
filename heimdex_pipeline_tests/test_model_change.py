"""A model change: search keeps serving the old model until `heimdex reembed` has built the new
one (retired partitions included); search answers only with videos indexed now; and says so
when nothing can answer."""

from pathlib import Path

import pytest
from sqlalchemy import update

from heimdex_pipeline.catalog.models import Video, VideoState
from heimdex_pipeline.cli.demo import frame_at
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import index_paths, reembed
from heimdex_pipeline.pipeline.retire import retire_partitions
from heimdex_pipeline.search.searcher import NoSearchIndexError, Searcher
from heimdex_pipeline_tests.conftest import stores_of

pytestmark = pytest.mark.slow


@pytest.fixture
def other_weights(tmp_path: Path, make_settings) -> str:
    import open_clip
    import torch

    torch.manual_seed(99)
    path = tmp_path / "other-weights.pt"
    torch.save(open_clip.create_model(Path(make_settings().clip_model).stem).state_dict(), path)
    return str(path)


def test_search_says_nothing_is_indexed_yet(make_settings):
    searcher = Searcher(stores_of(make_settings()))
    with pytest.raises(NoSearchIndexError, match="heimdex index"):
        searcher.search(text="anything")


def test_the_old_model_serves_until_the_new_one_holds_every_video(
    sample_videos, make_settings, other_weights, tmp_path
):
    first = make_settings()
    outcomes = index_paths([sample_videos / "bikes.mp4", sample_videos / "counter.mp4"], first)
    stores = stores_of(first)
    old = Searcher(stores).search(text="a street").model.model_id

    second = make_settings(HEIMDEX_CLIP_PRETRAINED=other_weights)
    configured = (second.clip_model, second.clip_pretrained)
    index_paths([sample_videos / "realshort.mp4"], second)  # a new video, new model only
    before = Searcher(stores, configured).search(text="a street", limit=50)
    assert before.model.model_id == old
    assert (
        "heimdex reembed" in before.notes[0]
        and "2 indexed videos still to embed" in (before.notes[0])
    )

    # the two older videos' partitions retired: re-embedding gives them their partitions back
    instance = dagster_instance(second)
    older = {outcome.video_id for outcome in outcomes}
    assert set(retire_partitions(instance, lambda: older, keep=1).retired) == older
    report = reembed(second)
    assert report.complete and report.active and report.videos == 3
    assert set(instance.get_dynamic_partitions("videos")) >= older
    instance.dispose()
    scene = outcomes[0].scenes[2]
    frame = frame_at(Path(outcomes[0].source), (scene["start_s"] + scene["end_s"]) / 2,
                     tmp_path / "q.png")  # fmt: skip
    after = Searcher(stores, configured).search(image=frame, limit=3)
    assert after.model.model_id == report.model_id != old
    assert after.notes == [] and after.hits[0].scene_id == scene["scene_id"]
    assert sorted(stores.vectors.scenes_tables()) == sorted(
        [f"scenes_{old}", f"scenes_{report.model_id}"]
    )


def test_search_returns_only_videos_indexed_now(sample_videos, make_settings):
    settings = make_settings()
    bikes, counter = index_paths(
        [sample_videos / "bikes.mp4", sample_videos / "counter.mp4"], settings
    )
    stores = stores_of(settings)
    searcher = Searcher(stores)
    assert {h.video_id for h in searcher.search(text="x", limit=50).hits} == {
        bikes.video_id,
        counter.video_id,
    }
    with stores.catalog.session() as session:  # a re-index in progress, or one that failed
        session.execute(
            update(Video).where(Video.id == bikes.video_id).values(state=VideoState.PROCESSING)
        )
    hits = searcher.search(text="x", limit=5).hits
    assert {h.video_id for h in hits} == {counter.video_id} and len(hits) == 1
    assert [h.rank for h in searcher.search(text="x", limit=5, offset=0).hits] == [1]
