"""Faults injected into real runs: a killed run process, concurrent writers, an S3 outage.

Each test compares what is left with what a clean run leaves (`snapshots.snapshot`: catalog rows,
object keys and digests, vector rows), so "recovered" means equal, not "looks fine".
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from heimdex_pipeline.settings import load_settings
from heimdex_pipeline.stores.vectors import quote
from heimdex_pipeline_tests.conftest import free_port, s3_server_env, stores_of
from heimdex_pipeline_tests.media_files import copy_with_name
from heimdex_pipeline_tests.snapshots import snapshot

pytestmark = pytest.mark.slow

STEPS = ["raw_videos", "scenes", "thumbnails", "embeddings", "search_index"]
CLIPS = ["counter.mp4", "bikes.mp4"]


def _env(home: Path, tiny_clip, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "HEIMDEX_HOME": str(home),
        "HEIMDEX_CLIP_MODEL": tiny_clip[0],
        "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
        **extra,
    }
    env.pop("DAGSTER_HOME", None)
    return env


def _heimdex(*args: str) -> list[str]:
    return [sys.executable, "-m", "heimdex_pipeline.cli.main", *args]


def _index(inputs: list[Path], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        _heimdex("index", *map(str, inputs)), env=env, capture_output=True, text=True, timeout=600
    )


def _settings(env: dict[str, str]):
    return load_settings({k: v for k, v in env.items() if k.startswith("HEIMDEX_")})


@pytest.fixture(scope="module")
def clean_run(sample_videos: Path, tmp_path_factory, tiny_clip) -> dict:
    """What indexing the clips once, undisturbed, leaves."""
    env = _env(tmp_path_factory.mktemp("clean") / "home", tiny_clip)
    result = _index([sample_videos / c for c in CLIPS], env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return snapshot(stores_of(_settings(env)))


def _open_instance(home: Path) -> dg.DagsterInstance:
    """The command's instance, opened under its lock (creating a SQLite instance races)."""
    with open(home / "dagster" / ".heimdex-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.from_config(str(home / "dagster"))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _wait_for_step(home: Path, step: str, process: subprocess.Popen, timeout: float = 120):
    """Poll the run's event log until `step` has started; answer the run id. The first step,
    `raw_videos`, is over in a few hundred milliseconds on these clips, less than opening the
    instance and polling its log can be sure to catch: it is caught by the first thing it
    does, copying a source into the inbox, a file the poll sees at once (the run is found after
    the kill, `None` here)."""
    deadline = time.monotonic() + timeout
    instance = None
    inbox = home / "objects" / "inbox"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (home.parent / "killed.log").read_text()[-3000:]
            raise AssertionError(f"the run ended before {step} started:\n{output}")
        if step == "raw_videos":
            if inbox.is_dir() and any(inbox.iterdir()):
                return None, None
            time.sleep(0.002)
            continue
        if instance is None and (home / "dagster" / "dagster.yaml").exists():
            instance = _open_instance(home)
        if instance is not None:
            for run in instance.get_runs(limit=1):
                records = instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.STEP_START
                ).records
                steps = {r.event_log_entry.dagster_event.step_key for r in records}
                if f"video_chain.{step}" in steps:
                    return instance, run.run_id
        time.sleep(0.02)
    raise AssertionError(f"step {step} never started")


@pytest.mark.parametrize("step", STEPS)
def test_a_run_killed_in_each_step_recovers_to_a_clean_runs_state(
    step, clean_run, sample_videos, tmp_path, tiny_clip
):
    """SIGKILL to the whole process group (the run and its CLIP worker: a container dying) while
    `step` runs; the next `heimdex index` fails the lost run, marks its videos, and indexes them
    again: the stores then equal a clean run's, to the byte."""
    home = tmp_path / "home"
    env = _env(home, tiny_clip)
    inputs = [sample_videos / c for c in CLIPS]
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(
        _heimdex("index", *map(str, inputs)),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        instance, run_id = _wait_for_step(home, step, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    if instance is None:  # struck by the inbox copy: the run, read now
        instance = _open_instance(home)
        (run,) = instance.get_runs(limit=1)
        run_id = run.run_id
    try:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # orphaned
        done = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
        ).records
        finished = {r.event_log_entry.dagster_event.step_key for r in done}
        assert f"video_chain.{step}" not in finished  # killed inside the step
    finally:
        instance.dispose()

    again = _index(inputs, env)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    instance = _open_instance(home)
    try:
        lost = instance.get_run_by_id(run_id)
        assert lost.status == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.PIPELINE_FAILURE
        ).records
        assert "ended without finishing" in failure[-1].event_log_entry.dagster_event.message
    finally:
        instance.dispose()
    assert snapshot(stores_of(_settings(env))) == clean_run


def test_concurrent_runs_writing_the_index_leave_one_row_per_scene(
    sample_videos, tmp_path, tiny_clip, postgres_url
):
    """Four `heimdex index` processes at once, on four copies of a clip (four videos), one
    catalog on PostgreSQL and one LanceDB table: LanceDB commit conflicts are retried, and the
    table ends with exactly one row per scene of each video."""
    home = tmp_path / "home"
    env = _env(home, tiny_clip, HEIMDEX_DATABASE_URL=postgres_url)
    upgrade = subprocess.run(_heimdex("db", "upgrade"), env=env, capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    copies = [
        copy_with_name(sample_videos / "realshort.mp4", tmp_path / "in", f"copy-{n}.mp4")
        for n in range(4)
    ]
    processes = [
        subprocess.Popen(
            _heimdex("index", str(path)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in copies
    ]
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, out[-2000:] + err[-2000:]
    stores = stores_of(_settings(env))
    state = snapshot(stores)
    assert [v[1] for v in state["videos"]] == ["indexed"] * 4
    (rows,) = state["tables"].values()
    scene_ids = sorted(s[0] for s in state["scenes"])
    assert sorted(r[0] for r in rows) == scene_ids  # each scene once, none missing or doubled
    (name,) = stores.vectors.scenes_tables()
    table = stores.vectors.db.open_table(name)
    for video_id, *_ in state["videos"]:
        scenes = [s for s in state["scenes"] if s[1] == video_id]
        assert table.count_rows(f"video_id = {quote(video_id)}") == len(scenes)


def test_an_s3_outage_mid_run_fails_the_video_clearly_and_a_rerun_recovers(
    sample_videos, make_settings, monkeypatch, tmp_path
):
    """The S3 server stops once `scenes` has written its objects and stays down: the step's
    retries (with backoff) run out, the video is `failed` with a cause a person can act on, and
    the other stores hold nothing of it. The failed-runs sensor asks for a re-run of it (an
    outage, not bad input), and marks it failed for good once the re-runs are spent. The server
    comes back; the sensor's re-run indexes the video, and the stores equal those of a clean
    run in another bucket."""
    import dataclasses

    from moto.server import ThreadedMotoServer

    from heimdex_pipeline.catalog.models import VideoState
    from heimdex_pipeline.catalog.videos import get_video
    from heimdex_pipeline.pipeline import checks
    from heimdex_pipeline.pipeline.local_runs import index_paths
    from heimdex_pipeline.pipeline.tags import ATTEMPT_TAG, HANDLED_TAG, RERUN_OF_TAG
    from heimdex_pipeline_tests.test_sensors import failed_runs_sensor_on
    from heimdex_pipeline_tests.test_sensors import run as run_request

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()

    def settings_for(bucket: str, home: str):
        return make_settings(
            HEIMDEX_HOME=str(tmp_path / home),
            **s3_server_env(port, bucket, HEIMDEX_STEP_RETRIES="2", HEIMDEX_STEP_RETRY_DELAY_S="1"),
        )

    clip = sample_videos / "realshort.mp4"
    try:
        (clean,) = index_paths([clip], settings_for("clean", "clean"))
        assert clean.state == "indexed", clean.error
        expected = snapshot(stores_of(settings_for("clean", "clean")))

        outage = settings_for("outage", "outage")
        stopped = []

        def stop_server_once(check: checks.Check) -> checks.Check:
            def evaluate(video_id, stores, sampling):
                if not stopped:
                    server.stop()
                    stopped.append(time.monotonic())
                return check.evaluate(video_id, stores, sampling)

            if check.name != "scenes_tile_the_video":
                return check
            return dataclasses.replace(check, evaluate=evaluate)

        with monkeypatch.context() as patch:
            patch.setattr(checks, "ALL_CHECKS", [stop_server_once(c) for c in checks.ALL_CHECKS])
            (failed,) = index_paths([clip], outage)
        assert stopped
        assert failed.state == "failed"
        assert f"127.0.0.1:{port}" in failed.error and "unreachable" in failed.error, failed.error
        assert "Traceback" not in failed.error and len(failed.error) < 500
        with stores_of(outage).catalog.session() as session:
            from heimdex_pipeline.catalog.models import Scene

            assert session.query(Scene).count() == 0  # no rows left behind
        assert not stores_of(outage).vectors.scenes_tables() or all(
            stores_of(outage).vectors.db.open_table(n).count_rows() == 0
            for n in stores_of(outage).vectors.scenes_tables()
        )
        instance = dg.DagsterInstance.from_config(str(outage.dagster_home))
        (run,) = instance.get_runs()
        retried = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
        ).records
        assert len(retried) == 2  # HEIMDEX_STEP_RETRIES, then given up

        # the sensor on the failed run: one re-run of the video, which waits for it
        (request,) = failed_runs_sensor_on(outage, instance, run)
        assert request.partition_key == failed.video_id
        assert request.tags[ATTEMPT_TAG] == "1" and request.tags[RERUN_OF_TAG] == run.run_id
        handled = instance.get_run_by_id(run.run_id).tags[HANDLED_TAG]
        assert handled == "1 run again, 0 marked failed"
        with stores_of(outage).catalog.session() as session:
            row = get_video(session, failed.video_id)
            assert row.state is VideoState.UPLOADING and row.run_key == request.run_key
            assert "run again (1 of 2 re-runs after an outage)" in row.error_text
            assert f"127.0.0.1:{port}" in row.error_text
        # had that been the last re-run allowed, the video would stay failed, saying so
        spent = run.with_tags({**run.tags, ATTEMPT_TAG: "2"})
        assert failed_runs_sensor_on(outage, instance, spent) == []
        with stores_of(outage).catalog.session() as session:
            row = get_video(session, failed.video_id)
            assert row.state is VideoState.FAILED and "(re-run 2 of 2)" in row.error_text

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        result = run_request(outage, instance, request)
        assert result.success
        rerun = instance.get_run_by_id(result.run_id)
        assert rerun.tags[ATTEMPT_TAG] == "1" and rerun.tags["dagster/partition"] == failed.video_id
        with stores_of(outage).catalog.session() as session:
            assert get_video(session, failed.video_id).state is VideoState.INDEXED
        instance.dispose()
        assert snapshot(stores_of(outage)) == expected
    finally:
        server.stop()
