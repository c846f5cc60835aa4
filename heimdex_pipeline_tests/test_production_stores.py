"""The same chain with the production stores: catalog on PostgreSQL, objects and vectors on S3."""

import urllib.request

import pytest

from heimdex_pipeline.catalog.database import upgrade
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.search.listing import list_videos
from heimdex_pipeline.search.searcher import Searcher
from heimdex_pipeline_tests.conftest import stores_of
from heimdex_pipeline_tests.media_files import make_bad_inputs
from heimdex_pipeline_tests.snapshots import snapshot

pytestmark = pytest.mark.slow


def test_postgres_and_s3_index_search_and_reindex_cleanly(
    sample_videos, make_settings, postgres_url, s3_env, tmp_path
):
    settings = make_settings(HEIMDEX_DATABASE_URL=postgres_url, **s3_env)
    assert settings.object_store_is_s3 and settings.lancedb_is_s3
    upgrade(settings.database_url)  # a PostgreSQL catalog is migrated as a deploy step
    bad = make_bad_inputs(tmp_path / "bad", sample_videos / "big_buck_bunny_0_30.webm")["truncated"]
    clips = [sample_videos / "bikes.mp4", bad, sample_videos / "issue-134-rotate.mp4"]
    outcomes = index_paths(clips, settings)
    assert [o.state for o in outcomes] == ["indexed", "failed", "indexed"], [
        o.error for o in outcomes
    ]
    assert "truncated" in outcomes[1].error

    stores = stores_of(settings)
    store = stores.objects
    keys = [info.key for info in store.list("")]
    assert any(k.startswith(f"thumbnails/{outcomes[0].video_id}/") for k in keys)
    assert not any(outcomes[1].video_id in k for k in keys)

    summaries = {s.video_id: s for s in list_videos(stores).videos}
    url = summaries[outcomes[2].video_id].thumbnail_url
    assert url.startswith("http://127.0.0.1") and "X-Amz-Expires=3600" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read(4) == b"RIFF"

    scene = outcomes[0].scenes[1]
    frame = store.get_bytes(scene["thumbnail_key"])
    (tmp_path / "q.webp").write_bytes(frame)
    hits = Searcher(stores).search(image=tmp_path / "q.webp", limit=3).hits
    assert hits[0].scene_id == scene["scene_id"]

    once = snapshot(stores)
    index_paths(clips, settings)
    assert snapshot(stores) == once
