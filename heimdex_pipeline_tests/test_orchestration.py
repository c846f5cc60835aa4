"""One job everywhere, many videos per run, and the truth about each video of a batch."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterEventType
from dagster._core.instance.ref import InstanceRef

from heimdex_pipeline.catalog.database import CatalogNotReadyError, upgrade
from heimdex_pipeline.catalog.models import Scene, Video, VideoState
from heimdex_pipeline.pipeline.checks import ALL_CHECKS
from heimdex_pipeline.pipeline.definitions import build_definitions
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import QUIET_RUN_CONFIG, index_paths
from heimdex_pipeline.pipeline.sensors.failed_runs import mark_unfinished_videos_failed
from heimdex_pipeline.pipeline.tags import INDEX_JOB
from heimdex_pipeline.search.listing import list_videos
from heimdex_pipeline_tests.conftest import stores_of, suite_env
from heimdex_pipeline_tests.media_files import make_bad_inputs

pytestmark = pytest.mark.slow

ASSETS = ["raw_videos", "scenes", "thumbnails", "embeddings", "search_index"]


@pytest.fixture(scope="module")
def batch_with_a_bad_video(sample_videos, tmp_path_factory, tiny_clip):
    """Three good clips and one text file indexed by one `index` call: one run."""
    from heimdex_pipeline.settings import load_settings

    home = tmp_path_factory.mktemp("batch")
    settings = load_settings(suite_env(home, tiny_clip))
    bad = make_bad_inputs(home / "bad", sample_videos / "big_buck_bunny_0_30.webm")["text"]
    inputs = [sample_videos / "bikes.mp4", bad, sample_videos / "realshort.mp4"]
    inputs.append(sample_videos / "counter.mp4")
    outcomes = index_paths(inputs, settings)
    good = [o.video_id for o in outcomes if o.source != str(bad)]
    (failed,) = [o for o in outcomes if o.source == str(bad)]
    return settings, dagster_instance(settings), good, failed


def test_the_cli_runs_the_index_video_job_once_for_the_whole_batch(batch_with_a_bad_video):
    _, instance, good, _ = batch_with_a_bad_video
    (run,) = instance.get_runs()
    assert run.job_name == INDEX_JOB
    assert run.tags["dagster/asset_partition_range_start"] == good[0]
    assert run.tags["dagster/asset_partition_range_end"] == good[-1]
    assert run.status == dg.DagsterRunStatus.FAILURE  # one of its videos failed


def test_each_good_video_is_materialized_and_the_bad_one_is_not(batch_with_a_bad_video):
    _, instance, good, _ = batch_with_a_bad_video
    for asset in ASSETS:
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(good), asset
    (run,) = instance.get_runs()
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    by_video: dict[str, dict] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = event.step_materialization_data.materialization.metadata
        by_video.setdefault(event.partition, {})[event.asset_key.path[-1]] = metadata
    # per-video metadata, not one result copied to every partition of the range
    scene_counts = {video: by_video[video]["scenes"]["scene_count"].value for video in good}
    assert sorted(scene_counts.values()) == [1, 1, 6]


def test_every_check_is_evaluated_for_each_good_video(batch_with_a_bad_video):
    _, instance, good, _ = batch_with_a_bad_video
    (run,) = instance.get_runs()
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    seen: dict[str, set[str]] = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        assert evaluation.passed and evaluation.target_materialization_data is not None
        seen.setdefault(evaluation.partition, set()).add(evaluation.check_name)
    names = {check.name for check in ALL_CHECKS}
    assert set(seen) == set(good) and all(checks == names for checks in seen.values())


def test_the_failed_video_is_named_with_its_reason_in_the_run_and_the_catalog(
    batch_with_a_bad_video,
):
    settings, instance, good, failed = batch_with_a_bad_video
    assert failed.state == "failed" and "notes.mp4" in failed.error
    (run,) = instance.get_runs()
    failures = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.STEP_FAILURE
    ).records
    # every branch end of the graph concludes for the videos that reached it: both name it
    ends = {r.event_log_entry.dagster_event.step_key.split(".")[-1] for r in failures}
    assert ends == {"search_index", "transcripts", "faces"}
    for failure in failures:
        message = failure.event_log_entry.dagster_event.step_failure_data.error.message
        assert failed.video_id in message and "notes.mp4" in message
        assert "1 of 4 videos failed" in message and "the other 3 are done" in message
    listing = {v.video_id: v for v in list_videos(stores_of(settings)).videos}
    assert listing[failed.video_id].state == "failed"
    assert "raw_videos" in listing[failed.video_id].error_text
    assert {listing[v].state for v in good} == {"indexed"}


def test_a_partition_added_by_hand_fails_with_an_actionable_message(make_settings):
    settings = make_settings()
    upgrade(settings.database_url)
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("videos", ["typed-in-the-ui"])
    job = build_definitions(settings).resolve_job_def(INDEX_JOB)
    result = job.execute_in_process(
        instance=instance,
        partition_key="typed-in-the-ui",
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    assert not result.success
    failures = result.get_step_failure_events()
    assert failures  # one for each branch end of the graph the partition reached
    for failure in failures:
        message = failure.step_failure_data.error.message
        assert "not in the catalog" in message and "heimdex delete typed-in-the-ui" in message


def test_steps_refuse_a_server_catalog_behind_the_code_and_say_how_to_fix_it(
    make_settings, postgres_url
):
    settings = make_settings(HEIMDEX_DATABASE_URL=postgres_url)
    upgrade(settings.database_url, "0001")
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("videos", ["v"])
    job = build_definitions(settings).resolve_job_def(INDEX_JOB)
    result = job.execute_in_process(
        instance=instance, partition_key="v", run_config=QUIET_RUN_CONFIG, raise_on_error=False
    )
    assert not result.success
    errors = [
        e.event_specific_data.error.message
        for e in result.all_events
        if e.event_type_value == "RESOURCE_INIT_FAILURE"
    ]
    assert errors and "heimdex db upgrade" in errors[0] and "0001" in errors[0]
    with pytest.raises(CatalogNotReadyError):
        stores_of_without_migrating(settings)


def test_an_embedded_catalog_behind_the_code_is_brought_to_it_by_its_first_user(make_settings):
    from heimdex_pipeline.catalog.database import Catalog, current_revision, head_revision

    settings = make_settings()
    upgrade(settings.database_url, "0001")
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("videos", ["v"])
    job = build_definitions(settings).resolve_job_def(INDEX_JOB)
    result = job.execute_in_process(
        instance=instance, partition_key="v", run_config=QUIET_RUN_CONFIG, raise_on_error=False
    )
    assert not [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert current_revision(Catalog(settings.database_url).engine) == head_revision()


def stores_of_without_migrating(settings):
    from heimdex_pipeline.stores import open_stores

    return open_stores(settings)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_first_upgrades_all_succeed(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'race.sqlite'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    script = (
        "import sys; from heimdex_pipeline.catalog.database import upgrade; upgrade(sys.argv[1])"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
    assert [code for code, _ in results] == [0, 0, 0, 0], [err[-500:] for _, err in results]
    from heimdex_pipeline.catalog.database import Catalog

    Catalog(url).check_schema()


def test_a_failed_runs_unfinished_videos_are_marked_failed_with_the_step(make_settings):
    settings = make_settings()
    stores = stores_of(settings)
    instance = dagster_instance(settings)
    with stores.catalog.session() as session:
        for video_id, state in [("a", VideoState.PROCESSING), ("b", VideoState.INDEXED)]:
            session.add(Video(id=video_id, owner="local", source_uri=f"file:///{video_id}.mp4",
                              title=video_id, state=state))  # fmt: skip
    instance.add_dynamic_partitions("videos", ["a", "b"])
    run = instance.add_run(
        dg.DagsterRun(
            job_name=INDEX_JOB,
            run_id="0f1e2d3c-0000-4000-8000-000000000000",
            tags={
                "dagster/asset_partition_range_start": "a",
                "dagster/asset_partition_range_end": "b",
            },
        )
    )
    marked = mark_unfinished_videos_failed(instance, stores, run, "failed", "worker lost")
    assert marked == ["a"]
    with stores.catalog.session() as session:
        a, b = session.get(Video, "a"), session.get(Video, "b")
        assert a.state is VideoState.FAILED and "run 0f1e2d3c failed: worker lost" in a.error_text
        assert b.state is VideoState.INDEXED


def test_the_clip_pool_lets_one_embeddings_step_run_at_a_time(sample_videos, tmp_path, tiny_clip):
    """Two `heimdex index` processes on one instance whose `clip` pool has one slot. The slot is
    held (a claim of the test's own) until both runs wait for it at once, so their embeddings
    steps would overlap without the pool; let go, the steps run one after the other."""
    home = tmp_path / "home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(
        "telemetry: {enabled: false}\nconcurrency:\n  pools:\n    default_limit: 1\n"
    )
    env = {
        **os.environ,
        "HEIMDEX_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "HEIMDEX_CLIP_MODEL": tiny_clip[0],
        "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
    }
    upgrade(f"sqlite:///{home / 'catalog.sqlite'}")
    # Dagster's SQLite instance creates its tables on first use, racily: make them first, as a
    # deployment would (`dagster instance migrate`).
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
    slots = instance.event_log_storage
    slots.initialize_concurrency_limit_to_default("clip")
    assert slots.get_concurrency_info("clip").slot_count == 1
    holder = ("0a0a0a0a-0000-4000-8000-000000000000", "the-test-holds-the-slot")
    assert slots.claim_concurrency_slot("clip", *holder).is_claimed
    clips = [["bikes.mp4", "counter.mp4"], ["testvideo.mp4", "chaplin.mp4"]]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "heimdex_pipeline.cli.main",
                "index",
                *(str(sample_videos / name) for name in names),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for names in clips
    ]
    try:
        deadline = time.monotonic() + 600
        while len(_blocked_at_embeddings(instance)) < 2:  # both waiting for the slot, together
            assert all(p.poll() is None for p in processes), "a command ended before the wait"
            assert time.monotonic() < deadline, "the runs never both waited for the clip slot"
            time.sleep(0.5)
        assert _embeddings_windows(instance) == {}, "a step ran while the test held the slot"
    finally:
        slots.free_concurrency_slot_for_step(*holder)
    codes = [p.wait(timeout=600) for p in processes]
    errors = [
        line for p in processes for line in p.stderr.read().splitlines() if "heimdex:" in line
    ]
    assert codes == [0, 0], errors
    windows = _embeddings_windows(instance)
    assert len(windows) == 2, windows
    (first, second) = sorted(windows.values())
    assert first[1] <= second[0], windows  # the second started after the first ended
    assert len(_blocked_at_embeddings(instance)) == 2
    instance.dispose()


def _blocked_at_embeddings(instance: dg.DagsterInstance) -> set[str]:
    """The runs whose embeddings step was told to wait for the `clip` pool."""
    blocked = set()
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key != "video_chain.embeddings":
                continue
            if "blocked by limit for pool clip" in (event.message or ""):
                blocked.add(run.run_id)
    return blocked


def _embeddings_windows(instance: dg.DagsterInstance) -> dict[str, tuple[float, float]]:
    """Each run's embeddings step: (STEP_START, STEP_SUCCESS) times, for the runs with both."""
    windows = {}
    for run in instance.get_runs():
        times = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key != "video_chain.embeddings":
                continue
            if event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
                times[event.event_type_value] = entry.timestamp
        if times:
            windows[run.run_id] = (times.get("STEP_START"), times.get("STEP_SUCCESS"))
    return windows


def test_a_deleted_video_leaves_nothing_in_any_store(sample_videos, make_settings, run_cli):
    settings = make_settings()
    (outcome, other) = index_paths(
        [sample_videos / "bikes.mp4", sample_videos / "realshort.mp4"], settings
    )
    result = run_cli(settings, "delete", outcome.video_id, "no-such-video")
    assert result.returncode == 1 and "no-such-video: not found" in result.stderr
    assert_gone(settings, outcome.video_id, other.video_id)


def assert_gone(settings, gone: str, kept: str) -> None:
    from heimdex_pipeline_tests.snapshots import snapshot

    stores = stores_of(settings)
    state = snapshot(stores)
    everything = [*state["objects"], *state["frames"]]
    assert not [key for key in everything if gone in key]
    assert [key for key in everything if kept in key]
    assert not [row for rows in state["tables"].values() for row in rows if row[1] == gone]
    with stores.catalog.session() as session:
        assert session.get(Video, gone).state is VideoState.DELETED
        assert not session.query(Scene).filter(Scene.video_id == gone).count()
    assert not dagster_instance(settings).has_dynamic_partition("videos", gone)


def test_deleting_on_s3_leaves_nothing_either(
    sample_videos, make_settings, s3_env, postgres_url, run_cli
):
    settings = make_settings(HEIMDEX_DATABASE_URL=postgres_url, **s3_env)
    upgrade(settings.database_url)
    (outcome, other) = index_paths(
        [sample_videos / "bikes.mp4", sample_videos / "realshort.mp4"], settings
    )
    stores = stores_of(settings)
    assert [i.key for i in stores.objects.list(f"inbox/{outcome.video_id}/")]
    assert run_cli(settings, "delete", outcome.video_id).returncode == 0
    assert_gone(settings, outcome.video_id, other.video_id)
    assert not [i.key for i in stores.objects.list(f"inbox/{outcome.video_id}/")]


@pytest.fixture
def run_cli(s3_env, tiny_clip):
    def run(settings, *args: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "HEIMDEX_HOME": str(settings.home),
            "HEIMDEX_DATABASE_URL": settings.database_url,
            "HEIMDEX_CLIP_MODEL": tiny_clip[0],
            "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
        }
        env.pop("DAGSTER_HOME", None)
        if settings.object_store_is_s3:
            env.update(s3_env)
        return subprocess.run(
            [sys.executable, "-m", "heimdex_pipeline.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


def test_unloadable_weights_stop_the_run_before_any_video_is_touched(
    sample_videos, make_settings, monkeypatch
):
    """A weights tag that is neither downloaded nor downloadable (no network) stops `index`
    within seconds, naming the setting, before anything is registered: no video in the
    catalog, no partition, no run."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = make_settings(HEIMDEX_CLIP_MODEL="ViT-B-32", HEIMDEX_CLIP_PRETRAINED="openai")
    from heimdex_pipeline.clip.model import ClipLoadError

    started = time.perf_counter()
    with pytest.raises(ClipLoadError, match="HEIMDEX_CLIP_PRETRAINED"):
        index_paths([sample_videos / "realshort.mp4"], settings)
    assert time.perf_counter() - started < 60
    instance = dagster_instance(settings)
    assert instance.get_runs() == []
    assert instance.get_dynamic_partitions("videos") == []
    with stores_of(settings).catalog.session() as session:
        assert session.query(Video).count() == 0


def test_outputs_of_a_step_are_written_by_the_step_for_its_own_videos_only(
    batch_with_a_bad_video,
):
    settings, _, good, failed = batch_with_a_bad_video
    keys = [info.key for info in stores_of(settings).objects.list("")]
    assert not [k for k in keys if failed.video_id in k]
    (run,) = dagster_instance(settings).get_runs()
    handoffs = {k.split("/")[1] for k in keys if k.startswith("runs/")}
    assert handoffs == {run.run_id}, "kept for a re-execution of the failed run, and only that"
    for video_id in good:
        assert any(k.startswith(f"thumbnails/{video_id}/") for k in keys)


def test_path_lists_stay_paths(tmp_path: Path):
    from heimdex_pipeline.library.sources import expand_inputs

    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    assert expand_inputs([loop, tmp_path]) == [loop]


def test_the_nightly_maintenance_sweeps_the_handoffs_of_old_runs_and_keeps_recent_ones(
    make_settings,
):
    """`maintain_search_index` (the nightly schedule's job) removes what the steps of runs that
    ended more than HANDOFF_RETENTION ago, or that the instance no longer knows, handed each
    other; a recent run's and a running run's handoffs stay (re-execution may need them)."""
    import logging
    import uuid

    from dagster._core.events import DagsterEvent
    from dagster._core.events.log import EventLogEntry

    from heimdex_pipeline.pipeline.jobs import HANDOFF_RETENTION
    from heimdex_pipeline.stores.keys import RUNS_PREFIX

    settings = make_settings()
    stores = stores_of(settings)
    instance = dagster_instance(settings)

    def run_that_ended(seconds_ago: float | None) -> str:
        run = instance.add_run(dg.DagsterRun(job_name=INDEX_JOB, run_id=str(uuid.uuid4())))
        if seconds_ago is not None:  # its end, as the run's last event records it
            event = DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job_name=INDEX_JOB)
            ended = time.time() - seconds_ago
            entry = EventLogEntry(None, logging.INFO, "", run.run_id, ended, dagster_event=event)
            instance.handle_new_event(entry)
        return run.run_id

    retention = HANDOFF_RETENTION.total_seconds()
    runs = {
        "old": run_that_ended(retention + 3600),
        "recent": run_that_ended(retention - 3600),
        "running": run_that_ended(None),
        "unknown": str(uuid.uuid4()),  # e.g. the instance was wiped since
    }
    assert instance.get_run_record_by_id(runs["old"]).end_time < time.time() - retention
    for run_id in runs.values():
        for step in ("video_chain.scenes", "video_chain.thumbnails"):
            stores.objects.put_bytes(f"{RUNS_PREFIX}{run_id}/{step}.json", b'{"videos": []}')
    job = build_definitions(settings).resolve_job_def("maintain_search_index")
    assert job.execute_in_process(instance=instance, run_config=QUIET_RUN_CONFIG).success
    left = {info.key[len(RUNS_PREFIX) :].split("/")[0] for info in stores.objects.list(RUNS_PREFIX)}
    assert left == {runs["recent"], runs["running"]}
    assert len(list(stores.objects.list(RUNS_PREFIX))) == 4
