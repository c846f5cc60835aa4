"""Secrets stay out of everything Dagster stores or a person sees; transient faults are retried."""

import os
import subprocess
import sys
import threading

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from sqlalchemy.engine import make_url

from heimdex_pipeline.pipeline.definitions import build_definitions
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import free_port, s3_server_env, stores_of

pytestmark = pytest.mark.slow

DB_PASSWORD = "pg-Secret-4242"
S3_ACCESS = "AKIA-Secret-1234"
S3_SECRET = "s3-Secret-7331"
SECRETS = [DB_PASSWORD, S3_SECRET]
# The access key id is not a secret: every presigned URL carries it (X-Amz-Credential). It stays
# out of what Dagster stores all the same.
STORED = [*SECRETS, S3_ACCESS]


@pytest.fixture
def secret_env(monkeypatch, postgres_url, s3_endpoint, s3_bucket, tmp_path, tiny_clip):
    """Production-shaped settings, in the process environment, with secrets worth finding.
    (PostgreSQL here trusts local connections, so any password works.)"""
    url = make_url(postgres_url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
    env = {
        "HEIMDEX_HOME": str(tmp_path / "home"),
        "HEIMDEX_DATABASE_URL": url,
        "HEIMDEX_OBJECT_STORE": f"s3://{s3_bucket}/objects",
        "HEIMDEX_LANCEDB_URI": f"s3://{s3_bucket}/lancedb",
        "HEIMDEX_S3_ENDPOINT": s3_endpoint,
        "HEIMDEX_S3_ACCESS_KEY": S3_ACCESS,
        "HEIMDEX_S3_SECRET_KEY": S3_SECRET,
        "HEIMDEX_S3_SECURE": "false",
        "HEIMDEX_CLIP_MODEL": tiny_clip[0],
        "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return env


def leaked(text: str, secrets: list[str] = SECRETS) -> list[str]:
    return [secret for secret in secrets if secret in text]


def cli(*args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", *args],
        env={**os.environ, **extra},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_no_secret_in_the_snapshot_the_runs_or_any_command_output(secret_env, sample_videos):
    settings = load_settings()
    repository = build_definitions(settings).get_repository_def()
    assert leaked(serialize_value(RepositorySnap.from_def(repository)), STORED) == []

    outputs = [cli("db", "upgrade")]
    assert outputs[0].returncode == 0 and "***" in outputs[0].stdout
    outputs.append(cli("index", str(sample_videos / "realshort.mp4"), "--json"))
    assert outputs[-1].returncode == 0, outputs[-1].stderr[-2000:]
    outputs += [cli("videos", "--json"), cli("search", "a street", "--json")]
    outputs.append(cli("videos", HEIMDEX_S3_SECURE="maybe"))  # a configuration error
    outputs.append(cli("db", "upgrade", HEIMDEX_DATABASE_URL=secret_env[
        "HEIMDEX_DATABASE_URL"].replace(":5432/", ":1/")))  # fmt: skip
    assert outputs[-2].returncode == 2 and outputs[-1].returncode == 2
    assert "Traceback" not in outputs[-1].stderr and "***" in outputs[-1].stderr
    for result in outputs:
        assert leaked(result.stdout + result.stderr) == [], result.args

    instance = dagster_instance(settings)
    runs = instance.get_runs()
    assert runs
    for run in runs:
        assert leaked(serialize_value(run), STORED) == []
        assert leaked(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)), STORED) == []
        for entry in instance.all_logs(run.run_id):
            assert leaked(serialize_value(entry), STORED) == [], entry.dagster_event_type
    # Every byte Dagster wrote (run and event databases, compute logs, the instance's files),
    # and every object Heimdex wrote (sidecars, bundles, handoffs, vectors).
    written = [p for p in settings.dagster_home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in written)
    for path in written:
        assert leaked(path.read_bytes().decode("latin-1"), STORED) == [], path
    stores = stores_of(settings)
    keys = [info.key for info in stores.objects.list("")]
    assert any(k.startswith("sidecars/") for k in keys)
    for key in keys:
        assert leaked(stores.objects.get_bytes(key).decode("latin-1"), STORED) == [], key


def test_resources_read_secrets_through_env_vars(secret_env):
    resources = build_definitions(load_settings()).resources
    s3 = resources["objects"].s3
    assert isinstance(s3.secret_key, dg.EnvVar) and isinstance(s3.access_key, dg.EnvVar)
    assert isinstance(resources["catalog"].database_url, dg.EnvVar)


def test_an_object_store_outage_is_retried_with_backoff_and_the_video_indexes(
    sample_videos, make_settings, s3_bucket
):
    """The S3 server is down when a run starts (a sensor's or a backfill's: `heimdex index`
    itself refuses an unreachable store before registering anything) and back ten seconds later:
    the first step's attempt fails (after the client's own retries), Dagster retries it with
    backoff, and the video is indexed once, with nothing left twice."""
    from moto.server import ThreadedMotoServer

    from heimdex_pipeline.catalog.videos import get_video, register_video, scenes_of
    from heimdex_pipeline.library.sources import source_uri_of
    from heimdex_pipeline.pipeline.local_runs import QUIET_RUN_CONFIG
    from heimdex_pipeline.pipeline.tags import INDEX_JOB

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings = make_settings(
        **s3_server_env(port, s3_bucket, HEIMDEX_STEP_RETRIES="4", HEIMDEX_STEP_RETRY_DELAY_S="2")
    )
    stores = stores_of(settings)
    clip = sample_videos / "realshort.mp4"
    with stores.catalog.session() as session:
        video_id = register_video(
            session, "realshort-outage", source_uri_of(clip), clip.name, owner="local"
        ).id
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("videos", [video_id])
    job = build_definitions(settings).resolve_job_def(INDEX_JOB)
    server.stop()
    restarted = threading.Event()

    def come_back() -> None:
        nonlocal server
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        restarted.set()

    timer = threading.Timer(10, come_back)
    timer.start()
    try:
        job.execute_in_process(
            instance=instance, partition_key=video_id, run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )  # fmt: skip
    finally:
        timer.join()
    try:
        assert restarted.is_set()
        with stores.catalog.session() as session:
            video = get_video(session, video_id)
            assert video.state.value == "indexed", video.error_text
            scenes = scenes_of(session, video_id)
        (run,) = instance.get_runs()
        retries = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
        ).records
        assert retries and all(
            r.event_log_entry.dagster_event.step_key == "video_chain.raw_videos" for r in retries
        )
        keys = [info.key for info in stores.objects.list("")]
        assert len([k for k in keys if k.startswith("inbox/")]) == 1
        assert len([k for k in keys if k.startswith("thumbnails/")]) == len(scenes)
    finally:
        server.stop()


def test_bad_input_is_never_retried(sample_videos, make_settings, tmp_path):
    settings = make_settings(HEIMDEX_STEP_RETRIES="3", HEIMDEX_STEP_RETRY_DELAY_S="5")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    (outcome,) = index_paths([bad], settings)
    assert outcome.state == "failed" and "broken.mp4" in outcome.error
    instance = dagster_instance(settings)
    (run,) = instance.get_runs()
    assert not instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
    ).records
