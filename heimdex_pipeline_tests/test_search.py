"""Search by image and by text over indexed real clips; filters; listing videos."""

from pathlib import Path

import pytest
from sqlalchemy import event

from heimdex_pipeline.cli.demo import frame_at
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.search.listing import list_videos
from heimdex_pipeline.search.searcher import Searcher, SearchError, build_filter
from heimdex_pipeline_tests.conftest import stores_of, suite_env

pytestmark = pytest.mark.slow

CLIPS = [
    "bikes.mp4",
    "movienet-test1.mp4",
    "big_buck_bunny_0_30.webm",
    "issue-195-aspect-ratio.mp4",
]


@pytest.fixture(scope="module")
def library(sample_videos: Path, tmp_path_factory, tiny_clip):
    from heimdex_pipeline.settings import load_settings

    home = tmp_path_factory.mktemp("search-home")
    settings = load_settings(suite_env(home, tiny_clip))
    outcomes = index_paths([sample_videos / name for name in CLIPS], settings)
    assert all(o.state == "indexed" for o in outcomes), [o.error for o in outcomes]
    return settings, outcomes, Searcher(stores_of(settings)), home


def test_a_frame_from_the_middle_of_a_scene_finds_that_scene(library):
    """Holds with random weights: near-identical images embed close together."""
    _, outcomes, search, home = library
    ranks = []
    for outcome in outcomes:
        for scene in outcome.scenes:
            middle = (scene["start_s"] + scene["end_s"]) / 2
            frame = frame_at(Path(outcome.source), middle, home / "query.png")
            hits = search.search(image=frame, limit=5).hits
            found = [h.scene_id for h in hits]
            ranks.append(found.index(scene["scene_id"]) + 1 if scene["scene_id"] in found else None)
    assert len(ranks) >= 15
    assert None not in ranks, ranks
    assert sum(rank == 1 for rank in ranks) / len(ranks) >= 0.8, ranks


def test_hits_carry_the_video_the_scene_a_score_and_a_thumbnail_url(library):
    _, outcomes, search, home = library
    bikes = outcomes[0]
    scene = bikes.scenes[3]
    frame = frame_at(Path(bikes.source), (scene["start_s"] + scene["end_s"]) / 2, home / "q.png")
    response = search.search(image=frame, limit=3)
    top = response.hits[0]
    assert (top.video_id, top.scene_id, top.rank) == (bikes.video_id, scene["scene_id"], 1)
    assert top.video_title == "bikes.mp4" and top.video_duration_s == pytest.approx(10.0)
    assert (top.start_s, top.end_s) == pytest.approx((scene["start_s"], scene["end_s"]))
    assert -1.0 <= top.score <= 1.0 and top.score >= response.hits[1].score
    assert top.thumbnail_url.startswith("file://")
    assert Path(top.thumbnail_url.removeprefix("file://")).is_file()
    assert response.model.dim == 64 and not response.model.is_random


def test_text_queries_return_ranked_scenes(library):
    _, _, search, _ = library
    hits = search.search(text="a man riding a bicycle", limit=4).hits
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_limit_offset_and_filters(library):
    _, outcomes, search, _ = library
    everything = search.search(text="street", limit=50).hits
    assert len(everything) == sum(len(o.scenes) for o in outcomes)
    page_two = search.search(text="street", limit=3, offset=3).hits
    assert [h.scene_id for h in page_two] == [h.scene_id for h in everything[3:6]]
    assert [h.rank for h in page_two] == [4, 5, 6]
    only = search.search(text="street", limit=50, video_ids=[outcomes[1].video_id]).hits
    assert {h.video_id for h in only} == {outcomes[1].video_id}
    long_ones = search.search(text="street", limit=50, min_duration_s=5.0).hits
    assert long_ones and all(h.end_s - h.start_s >= 5.0 for h in long_ones)
    assert len(long_ones) < len(everything)
    short_ones = search.search(text="street", limit=50, max_duration_s=2.0).hits
    assert all(h.end_s - h.start_s <= 2.0 for h in short_ones)


def test_hostile_filter_values_match_nothing_instead_of_everything(library):
    _, _, search, _ = library
    for hostile in ["' OR 1=1 --", "x') OR ('1'='1", "bikes%", 'a" OR "1"="1']:
        assert search.search(text="street", limit=50, video_ids=[hostile]).hits == []
    assert "''' OR 1=1 --'" in build_filter(["' OR 1=1 --"])
    with pytest.raises(SearchError):
        build_filter(min_duration_s=float("nan"))
    with pytest.raises(ValueError):
        build_filter(max_duration_s="1 OR 1=1")


def test_bad_queries_are_refused(library, tmp_path):
    _, _, search, _ = library
    with pytest.raises(SearchError):
        search.search()
    with pytest.raises(SearchError):
        search.search(text="x", limit=0)
    not_an_image = tmp_path / "x.png"
    not_an_image.write_text("hello")
    with pytest.raises(SearchError, match=r"x\.png"):
        search.search(image=not_an_image)


def test_listing_videos_takes_the_same_number_of_queries_for_any_number(library, sample_videos):
    settings, _, search, _ = library
    statements = []

    def count(_connection, _cursor, statement, *_args, **_kwargs):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = search.stores.catalog.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        page = list_videos(search.stores)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    summaries = page.videos
    assert page.total == len(summaries) == len(CLIPS) and len(statements) <= 3
    for summary in summaries:
        assert summary.state == "indexed" and summary.scene_count >= 1
        assert Path(summary.thumbnail_url.removeprefix("file://")).is_file()
    index_paths([sample_videos / "realshort.mp4", sample_videos / "chaplin.mp4"], settings)
    statements.clear()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert list_videos(search.stores).total == len(CLIPS) + 2
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 3
