"""Backfills and a canceled run as an operator makes them: launched in `dagster dev` (over
GraphQL, as the UI does, or with `heimdex backfill`), run by its daemon, on videos `heimdex
index` registered.

One `dagster dev` for the module, and its three backfills launched at once (as an operator may:
the daemon takes them in the same go-rounds); each test works on videos of its own and reads its
own backfill."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.instance.ref import InstanceRef

from benchmarks._runs import dagster_dev, graphql, heimdex_env
from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.video_ids import video_id_for
from heimdex_pipeline.catalog.videos import register_video, videos_by_id
from heimdex_pipeline.library.sources import source_uri_of
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.pipeline.runs import run_videos
from heimdex_pipeline.search.searcher import Searcher
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import stores_of

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

LAUNCH = """
mutation ($partitionSet: String!, $partitions: [String!]!) {
  launchPartitionBackfill(backfillParams: {partitionNames: $partitions, selector: {
      partitionSetName: $partitionSet,
      repositorySelector: {repositoryName: "__repository__",
                           repositoryLocationName: "heimdex_pipeline"}}}) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
SHOWN = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { partitionSetName numPartitions }
  }
}
"""
TERMINATE = """
mutation ($runId: String!) { terminateRun(runId: $runId) { __typename } }
"""
ENDED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


@pytest.fixture(scope="module")
def dev(sample_videos, tmp_path_factory, tiny_clip):
    """Two videos indexed with the old weights (to be re-embedded), three registered only;
    then `dagster dev` configured with new weights."""
    import open_clip
    import torch

    home = tmp_path_factory.mktemp("backfills")
    base = {"HEIMDEX_HOME": str(home), "HEIMDEX_CLIP_MODEL": tiny_clip[0],
            "HEIMDEX_ASR_MODEL": "off", "HEIMDEX_FACES": "off"}  # fmt: skip
    old = load_settings({**base, "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1]})
    indexed = index_paths([sample_videos / "realshort.mp4", sample_videos / "counter.mp4"], old)
    assert [o.state for o in indexed] == ["indexed", "indexed"]
    bad = home / "notes.mp4"
    bad.write_text("not a video\n" * 50)
    waiting = {
        name: path
        for name, path in [
            ("good", sample_videos / "delayed_start.mp4"),
            ("bad", bad),
            ("long", sample_videos / "bikes.mp4"),
        ]
    }
    ids = {name: register(old, path) for name, path in waiting.items()}
    ids.update(realshort=indexed[0].video_id, counter=indexed[1].video_id)
    torch.manual_seed(99)
    new_weights = home / "new-weights.pt"
    torch.save(open_clip.create_model(Path(tiny_clip[0]).stem).state_dict(), new_weights)
    new = load_settings({**base, "HEIMDEX_CLIP_PRETRAINED": str(new_weights)})
    env = heimdex_env(
        home,
        **base,
        HEIMDEX_CLIP_PRETRAINED=str(new_weights),
        HEIMDEX_RUN_BATCH_SIZE="2",
        HEIMDEX_SENSOR_INTERVAL_S="5",  # the canceled-runs sensor looks sooner
    )
    with dagster_dev(env, home / "dagster-dev.log") as server:
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))
        instance.heimdex_env = env  # for `heimdex backfill`, as an operator runs it
        yield server.port, instance, new, ids
        instance.dispose()


def register(settings, path: Path) -> str:
    """The video in the catalog and its partition in the instance, as `heimdex index` leaves
    them before its runs: what a backfill then works on."""
    uri = source_uri_of(path)
    video_id = video_id_for(uri)
    with stores_of(settings).catalog.session() as session:
        register_video(
            session, video_id, uri, path.name, owner="local"
        ).state = VideoState.UPLOADING
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("videos", [video_id])
    instance.dispose()
    return video_id


def backfill(port: int, instance, job: str, partitions: list[str]) -> str:
    answer = graphql(port, LAUNCH, {"partitionSet": f"{job}_partition_set",
                                    "partitions": partitions})  # fmt: skip
    answer = answer["data"]["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def backfill_command(instance, *args: str) -> str:
    """`heimdex backfill ARGS` in a process of its own: the backfill it launched."""
    done = subprocess.run(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", "backfill", *args],
        env=instance.heimdex_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    backfill_id = done.stderr.split("backfill ", 1)[1].split(":", 1)[0]
    assert instance.get_backfill(backfill_id) is not None, done.stderr
    assert "no backfill daemon is running" not in done.stderr  # dagster dev's daemon beats
    return backfill_id


def settled(instance, backfill_id: str, timeout_s: float = 400):
    """The backfill once it and every run it launched have ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        record = instance.get_backfill(backfill_id)
        runs = instance.get_runs(filters=dg.RunsFilter.for_backfill(backfill_id))
        if record.status.value != "REQUESTED" and runs and all(r.status in ENDED for r in runs):
            return record, runs
        assert time.monotonic() < deadline, (record.status, [r.status for r in runs])
        time.sleep(1)


def states(settings, *video_ids: str) -> dict[str, tuple[str, str | None]]:
    with stores_of(settings).catalog.session() as session:
        rows = videos_by_id(session, list(video_ids))
    return {v: (rows[v].state.value, rows[v].error_text) for v in video_ids}


@pytest.fixture(scope="module")
def launched(dev) -> dict[str, str]:
    """The three backfills, launched together, and the weights search served before them."""
    port, instance, settings, ids = dev
    searcher = Searcher(stores_of(settings), (settings.clip_model, settings.clip_pretrained))
    return {
        "served_before": searcher.active().pretrained,
        "canceled": backfill(port, instance, "index_video", [ids["long"]]),
        "with_a_bad_video": backfill_command(
            instance, "--video", ids["good"], "--video", ids["bad"]
        ),
        "reembed": backfill_command(
            instance,
            "--job",
            "reembed_videos",
            "--state",
            "indexed",
            "--video",
            ids["realshort"],
            "--video",
            ids["counter"],
        ),
    }


def test_a_canceled_run_fails_its_unfinished_videos(dev, launched):
    """Terminated from the UI while it runs: the `canceled_runs_fail_their_videos` sensor marks
    the video failed, saying so (it would otherwise wait as `uploading` for ever). First, while
    its run still runs."""
    port, instance, settings, ids = dev
    backfill_id = launched["canceled"]
    deadline = time.monotonic() + 300
    while True:
        runs = instance.get_runs(filters=dg.RunsFilter.for_backfill(backfill_id))
        if runs and runs[0].status is dg.DagsterRunStatus.STARTED:
            break
        assert not runs or runs[0].status not in ENDED, runs[0].status
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.2)
    (run,) = runs
    assert graphql(port, TERMINATE, {"runId": run.run_id})["data"]["terminateRun"]
    deadline = time.monotonic() + 180
    while states(settings, ids["long"])[ids["long"]][0] != "failed":
        assert time.monotonic() < deadline, (
            instance.get_run_by_id(run.run_id).status,
            states(settings, ids["long"]),
        )
        time.sleep(1)
    assert instance.get_run_by_id(run.run_id).status is dg.DagsterRunStatus.CANCELED
    (_, error) = states(settings, ids["long"])[ids["long"]]
    assert f"run {run.run_id[:8]} was canceled" in error, error


def test_a_backfill_with_a_bad_video_completes_with_failures(dev, launched):
    """Launched with `heimdex backfill`: the daemon runs it, the UI shows it."""
    port, instance, settings, ids = dev
    shown = graphql(port, SHOWN, {"id": launched["with_a_bad_video"]})["data"]
    shown = shown["partitionBackfillOrError"]
    assert shown["__typename"] == "PartitionBackfill", shown
    assert (shown["partitionSetName"], shown["numPartitions"]) == ("index_video_partition_set", 2)
    record, runs = settled(instance, launched["with_a_bad_video"])
    assert record.status is BulkActionStatus.COMPLETED_FAILED, record.status
    assert sorted(v for run in runs for v in run_videos(instance, run)) == sorted(
        [ids["good"], ids["bad"]]
    )
    found = states(settings, ids["good"], ids["bad"])
    assert found[ids["good"]] == ("indexed", None)
    assert found[ids["bad"]][0] == "failed" and "notes.mp4" in found[ids["bad"]][1]


def test_a_reembed_videos_backfill_moves_search_to_the_new_model(dev, launched):
    _, instance, settings, ids = dev
    videos = [ids["realshort"], ids["counter"]]
    assert launched["served_before"] != settings.clip_pretrained  # the old one served
    record, runs = settled(instance, launched["reembed"])
    searcher = Searcher(stores_of(settings), (settings.clip_model, settings.clip_pretrained))
    assert record.status is BulkActionStatus.COMPLETED_SUCCESS, record.status
    assert {r.job_name for r in runs} == {"reembed_videos"}
    assert searcher.active().pretrained == settings.clip_pretrained
    hits = searcher.search(text="anything", limit=50, video_ids=videos).hits
    assert {hit.video_id for hit in hits} == set(videos)
    assert states(settings, *videos) == {v: ("indexed", None) for v in videos}


def test_the_commands_backfill_shows_in_the_ui(dev, launched, browser_page):
    """What an operator opens after `heimdex backfill`: the backfill's page in Dagster's UI."""
    from playwright.sync_api import expect

    port, instance, _, _ = dev
    backfill_id = launched["with_a_bad_video"]
    settled(instance, backfill_id)
    graphql(port, "mutation { setNuxSeen }")  # the first-visit pop-up would cover the page
    page = browser_page
    page.goto(f"http://127.0.0.1:{port}/runs/b/{backfill_id}")
    expect(page.get_by_text(backfill_id).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("index_video").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dagster-backfill-from-the-command.png"))
