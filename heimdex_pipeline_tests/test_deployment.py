"""The code location loads, validates and records runs in a PostgreSQL-backed instance."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from heimdex_pipeline.definitions import defs
from heimdex_pipeline.pipeline.pooled_postgres import PARTITIONS_FRESH_S

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_hold_the_stages_the_library_assets_their_checks_and_jobs():
    repository = defs.get_repository_def()
    keys = {key.path[-1] for key in repository.asset_graph.get_all_asset_keys()}
    stages = {
        "raw_videos", "scenes", "thumbnails", "embeddings", "search_index", "transcripts", "faces",
    }  # fmt: skip
    library = {"library_stats", "people"}
    assert keys == stages | library
    checks = {key.asset_key.path[-1] for key in repository.asset_graph.asset_check_keys}
    assert len(list(repository.asset_graph.asset_check_keys)) == 9
    assert checks == (stages - {"raw_videos"}) | library
    people = repository.asset_graph.get(dg.AssetKey("people"))
    assert people.partitions_def is None and people.automation_condition is not None
    assert people.parent_keys == {dg.AssetKey("faces")}
    stats = repository.asset_graph.get(dg.AssetKey("library_stats"))
    assert stats.partitions_def is None and stats.automation_condition is not None
    assert stats.parent_keys == {dg.AssetKey("search_index")}
    assert {job.name for job in repository.get_all_jobs()} >= {
        "index_video",
        "reembed_videos",
        "refresh_people",
        "maintain_search_index",
    }
    assert {sensor.name for sensor in repository.sensor_defs} == {
        "inbox_sensor",
        "failed_runs_fail_their_videos",
        "failed_runs_whose_retry_never_came",
        "canceled_runs_fail_their_videos",
        "library_refresh",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in repository.sensor_defs)
    (schedule,) = repository.schedule_defs
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    embeddings = repository.asset_graph.get(dg.AssetKey("embeddings"))
    # one graph-backed definition: its pools are its ops' (embeddings `clip`, transcripts `asr`)
    assert embeddings.pools == {"clip", "asr", "faces"}
    transcripts = repository.asset_graph.get(dg.AssetKey("transcripts"))
    assert transcripts.parent_keys == {dg.AssetKey("scenes")}  # beside the picture stages
    policy = embeddings.backfill_policy
    assert policy is not None and policy.max_partitions_per_run == 25


@pytest.mark.slow  # a fresh interpreter
def test_loading_the_code_location_imports_no_heavy_library():
    # Every Dagster process (webserver, daemon, each step) imports the code location: torch,
    # open_clip (about 4 s here) and lancedb (1.5 s) load only in the steps that use them.
    script = (
        "import sys, heimdex_pipeline.definitions; "
        "print(sorted({'torch', 'open_clip', 'lancedb', 'faster_whisper', 'ctranslate2'}"
        " & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_dagster_definitions_validate_passes(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "heimdex_pipeline.definitions",
        ],
        cwd=ROOT,
        env={"HEIMDEX_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


@pytest.mark.slow
def test_dg_check_defs_passes(tmp_path: Path):
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "dg"), "check", "defs"],
        cwd=ROOT,
        env={"HEIMDEX_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path), "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All definitions loaded successfully" in result.stderr + result.stdout


@pytest.fixture
def pg_env(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = make_url(postgres_url)
    monkeypatch.setenv("HEIMDEX_DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("HEIMDEX_DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("HEIMDEX_DAGSTER_PG_USER", url.username or "postgres")
    monkeypatch.setenv("HEIMDEX_DAGSTER_PG_PASSWORD", url.password or "unused-with-trust-auth")
    monkeypatch.setenv("HEIMDEX_DAGSTER_PG_DB", url.database)
    return postgres_url


def _connections(url: str) -> int:
    """Connections open to the database, not counting this question's own."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg2"), poolclass=NullPool)
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        ).scalar_one()
    engine.dispose()
    return count - 1


@pytest.mark.slow
def test_the_production_instance_records_materializations_in_postgres(pg_env: str, tmp_path: Path):
    shutil.copy(ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        partitions = dg.DynamicPartitionsDefinition(name="videos")

        @dg.asset(partitions_def=partitions)
        def probe_asset() -> dg.MaterializeResult:
            return dg.MaterializeResult(metadata={"ok": True})

        instance.add_dynamic_partitions("videos", ["clip-1"])
        result = dg.materialize([probe_asset], partition_key="clip-1", instance=instance)
        assert result.success
        # the pooled storage, here and in what a run worker rebuilds from the instance's ref
        assert instance.get_ref().storage_data.class_name == "PooledPostgresStorage"
        rebuilt = dg.DagsterInstance.from_ref(instance.get_ref())
        for storage in (rebuilt.run_storage, rebuilt.event_log_storage):
            assert type(storage._engine.pool).__name__ == "QueuePool", storage
        # partition lists: this process's change at once, another process's within a second
        instance.add_dynamic_partitions("videos", ["clip-2"])
        assert instance.get_dynamic_partitions("videos") == ["clip-1", "clip-2"]
        rebuilt.add_dynamic_partitions("videos", ["clip-3"])
        deadline = time.monotonic() + PARTITIONS_FRESH_S + 2
        while "clip-3" not in instance.get_dynamic_partitions("videos"):
            assert time.monotonic() < deadline, "another process's partition never showed"
            time.sleep(0.1)
        rebuilt.delete_dynamic_partition("videos", "clip-3")
        before = _connections(pg_env)
        rebuilt.dispose()  # a sensor's instance, gone after its evaluation: its connections too
        assert _connections(pg_env) < before
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure  # bad input: never again
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 300
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 8
    finally:
        instance.dispose()
    engine = create_engine(make_url(pg_env).set(drivername="postgresql+psycopg2"))
    with engine.connect() as connection:
        count = connection.execute(
            text(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
                " AND asset_key LIKE '%probe_asset%' AND partition = 'clip-1'"
            )
        ).scalar_one()
    engine.dispose()
    assert count == 1


@pytest.mark.slow
def test_a_partition_read_begun_before_an_add_is_never_kept(
    pg_env: str, tmp_path: Path, monkeypatch
):
    """The daemon's threads share one storage: a slow read (the asset daemon's) that began
    before the sensor's add must not be cached over it, or the run the sensor then creates
    cannot find its own partitions."""
    import threading

    from dagster_postgres import PostgresEventLogStorage

    shutil.copy(ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    read, release = threading.Event(), threading.Event()
    plain = PostgresEventLogStorage.get_dynamic_partitions

    def slow(self, name):
        keys = plain(self, name)
        if threading.current_thread().name == "asset-daemon":
            read.set()
            release.wait(10)
        return keys

    monkeypatch.setattr(PostgresEventLogStorage, "get_dynamic_partitions", slow)
    try:
        instance.add_dynamic_partitions("videos", ["old"])
        reader = threading.Thread(
            target=instance.get_dynamic_partitions, args=("videos",), name="asset-daemon"
        )
        reader.start()
        assert read.wait(10)  # it has read ["old"] and not returned yet
        instance.add_dynamic_partitions("videos", ["new"])
        release.set()
        reader.join(10)
        assert instance.get_dynamic_partitions("videos") == ["old", "new"]
    finally:
        instance.dispose()
