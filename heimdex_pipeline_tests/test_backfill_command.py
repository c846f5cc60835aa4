"""`heimdex backfill` and `heimdex reembed --backfill` without a daemon: which videos they
choose, and the backfill they leave in the instance (the one the daemon runs: see
test_backfills.py, where it does)."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.users import add_user
from heimdex_pipeline.catalog.videos import register_video
from heimdex_pipeline.cli.main import main
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import stores_of, suite_env

STATES = {
    "a": VideoState.INDEXED,
    "b": VideoState.INDEXED,
    "c": VideoState.FAILED,
    "d": VideoState.FAILED,  # its partition retired: the backfill adds it back
    "e": VideoState.DELETED,
}


@pytest.fixture
def library(tmp_path, tiny_clip, monkeypatch):
    """Five videos in the catalog (bob owns b); partitions for a, c and b, in that order."""
    for name, value in suite_env(tmp_path / "home", tiny_clip).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = load_settings()
    with stores_of(settings).catalog.session() as session:
        add_user(session, "bob")
        for name, state in STATES.items():
            owner = "bob" if name == "b" else "local"
            register_video(
                session, f"v-{name}", f"file:///{name}.mp4", f"{name}.mp4", owner=owner
            ).state = state
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("videos", ["v-a", "v-c", "v-b"])
    yield instance
    instance.dispose()


def newest_backfill(instance: dg.DagsterInstance):
    (backfill, *_) = instance.get_backfills(limit=1)
    return backfill


def test_failed_videos_are_backfilled_in_partition_order_with_retired_partitions_back(
    library, capsys
):
    assert main(["backfill", "--failed"]) == 0
    backfill = newest_backfill(library)
    assert backfill.partition_names == ["v-c", "v-d"]  # c where it stands, d added at the end
    assert library.get_dynamic_partitions("videos") == ["v-a", "v-c", "v-b", "v-d"]
    assert backfill.status is BulkActionStatus.REQUESTED
    assert backfill.partition_set_name == "index_video_partition_set"
    origin = backfill.partition_set_origin.repository_origin
    assert origin.code_location_origin.location_name == "heimdex_pipeline"
    assert backfill.asset_selection is None  # the whole chain
    err = capsys.readouterr().err
    assert f"backfill {backfill.backfill_id}: index_video for 2 videos" in err
    assert "no backfill daemon is running" in err


def test_filters_combine_and_assets_narrow_the_job(library, capsys):
    assert main(["backfill", "--state", "indexed", "--assets", "transcripts"]) == 0
    backfill = newest_backfill(library)
    assert backfill.partition_names == ["v-a", "v-b"]  # a deleted video is never chosen
    assert backfill.asset_selection == [dg.AssetKey("transcripts")]
    assert main(["backfill", "--state", "indexed", "--owner", "bob", "--json"]) == 0
    assert newest_backfill(library).partition_names == ["v-b"]
    assert '"videos": 1' in capsys.readouterr().out
    assert main(["backfill", "--video", "v-a", "--video", "v-d", "--dry-run"]) == 0
    assert "2 videos would be backfilled" in capsys.readouterr().err
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert main(["backfill", "--all", "--since", tomorrow]) == 1
    assert "no video matches" in capsys.readouterr().err
    assert len(library.get_backfills()) == 2  # neither the dry run nor the empty one wrote any


def test_bad_requests_say_why_and_launch_nothing(library, capsys):
    assert main(["backfill"]) == 2
    assert "say which videos" in capsys.readouterr().err
    assert main(["backfill", "--all", "--job", "reembed_videos", "--assets", "scenes"]) == 2
    assert "choose among embeddings, search_index" in capsys.readouterr().err
    assert main(["backfill", "--failed", "--title", 'the "nightly" one']) == 2
    assert "--title" in capsys.readouterr().err
    assert library.get_dynamic_partitions("videos") == ["v-a", "v-c", "v-b"]  # d not added
    assert main(["backfill", "--video", "v-zz"]) == 1
    assert "no such video: v-zz" in capsys.readouterr().err
    assert library.get_backfills() == []


def test_reembed_can_be_launched_as_a_backfill(library, capsys):
    assert main(["reembed", "--backfill"]) == 0
    backfill = newest_backfill(library)
    assert backfill.partition_set_name == "reembed_videos_partition_set"
    assert sorted(backfill.partition_names) == ["v-a", "v-b"]  # the indexed videos
    assert f"backfill {backfill.backfill_id}: reembed_videos" in capsys.readouterr().err
