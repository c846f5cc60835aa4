"""Asset health read from the kept partitions (`kept_health.py`, the pooled storage's
`kept_partitions_def`) says what Dagster's own reads of the whole history say about every kept
partition: materialized, failed, in progress, after retired partitions, re-runs and a wipe."""

import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventType,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from heimdex_pipeline.pipeline import kept_health
from heimdex_pipeline.pipeline.partitions import videos
from heimdex_pipeline.pipeline.retire import delete_partitions
from heimdex_pipeline_tests.conftest import pooled_dagster_yaml

pytestmark = pytest.mark.slow  # PostgreSQL

ASSET = dg.AssetKey("raw_videos")
KEYS = [f"p{i}" for i in range(10)]


def _instance(home: Path, url: str, kept: bool) -> dg.DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(pooled_dagster_yaml(url, kept))
    return dg.DagsterInstance.from_config(str(home))


def _event(run_id: str, event_type: DagsterEventType, data) -> EventLogEntry:
    return EventLogEntry(
        error_info=None, level=20, user_message="", run_id=run_id, timestamp=time.time(),
        step_key=None, job_name="index_video",
        dagster_event=DagsterEvent(
            event_type_value=event_type.value, job_name="index_video", event_specific_data=data
        ),
    )  # fmt: skip


def _materialize(instance: dg.DagsterInstance, run_id: str, *keys: str) -> None:
    instance.event_log_storage.store_event_batch([
        _event(run_id, DagsterEventType.ASSET_MATERIALIZATION,
               StepMaterializationData(dg.AssetMaterialization(asset_key=ASSET, partition=k)))
        for k in keys
    ])  # fmt: skip


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, *keys: str) -> str:
    """A run of index_video in `status` that planned `keys`."""
    run = instance.add_run(
        dg.DagsterRun(job_name="index_video", run_id=str(uuid.uuid4()), status=status)
    )
    instance.event_log_storage.store_event_batch([
        _event(run.run_id, DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
               AssetMaterializationPlannedData(ASSET, partition=k))
        for k in keys
    ])  # fmt: skip
    return run.run_id


def _attempts(instance: dg.DagsterInstance) -> dict[str, tuple[str, int]]:
    storage = instance.event_log_storage
    read = storage.get_latest_asset_partition_materialization_attempts_without_materializations
    return dict(read(ASSET))


def _health(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Dagster's cached health of the asset, rebuilt from nothing."""
    instance.wipe_asset_cached_status([ASSET])
    value = get_and_update_asset_status_cache_value(instance, ASSET, videos)
    assert value is not None
    subsets = {
        "materialized": value.deserialize_materialized_partition_subsets(videos),
        "failed": value.deserialize_failed_partition_subsets(videos),
        "in_progress": value.deserialize_in_progress_partition_subsets(videos),
    }
    return {name: set(subset.get_partition_keys()) for name, subset in subsets.items()}


@pytest.fixture
def instances(tmp_path, postgres_url):
    url = postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    kept = _instance(tmp_path / "kept", url, kept=True)
    plain = _instance(tmp_path / "plain", url, kept=False)
    yield kept, plain
    kept.dispose()
    plain.dispose()


def _history(instance: dg.DagsterInstance) -> None:
    """p0-p2 indexed; p3, p4 failed; p5 running; p6 indexed then failed again; p7 failed then
    indexed; p8 never run; p9 indexed twice. Then p1 and p3 retired."""
    instance.add_dynamic_partitions("videos", KEYS)
    _materialize(instance, "", "p0", "p1", "p2", "p6", "p9")
    _run(instance, dg.DagsterRunStatus.FAILURE, "p3", "p4", "p7")
    _run(instance, dg.DagsterRunStatus.STARTED, "p5")
    _run(instance, dg.DagsterRunStatus.FAILURE, "p6")
    again = _run(instance, dg.DagsterRunStatus.SUCCESS, "p7", "p9")
    _materialize(instance, again, "p7", "p9")
    delete_partitions(instance, ["p1", "p3"])


def test_the_kept_partitions_health_is_dagsters_for_every_kept_partition(instances):
    kept, plain = instances
    _history(kept)
    listed = set(plain.get_dynamic_partitions("videos"))
    assert listed == set(KEYS) - {"p1", "p3"}

    everything = plain.get_materialized_partitions(ASSET)
    assert everything == {"p0", "p1", "p2", "p6", "p7", "p9"}  # the retired p1 too
    assert kept.get_materialized_partitions(ASSET) == everything & listed

    wanted = _attempts(plain)
    assert set(wanted) == {"p3", "p4", "p5", "p6"}
    found = _attempts(kept)
    assert found == {k: v for k, v in wanted.items() if k in listed}

    health = _health(kept)
    assert health == _health(plain)
    assert health == {
        "materialized": {"p0", "p2", "p6", "p7", "p9"},
        "failed": {"p4", "p6"},
        "in_progress": {"p5"},
    }


def test_a_wiped_asset_and_a_retired_partition_run_again(instances):
    kept, plain = instances
    _history(kept)
    kept.wipe_assets([ASSET])
    time.sleep(0.01)  # a wipe is a timestamp: what follows must come after it
    kept.add_dynamic_partitions("videos", ["p1"])  # run again: its partition comes back
    _materialize(kept, "", "p1", "p2")
    assert kept.get_materialized_partitions(ASSET) == {"p1", "p2"}
    assert plain.get_materialized_partitions(ASSET) == {"p1", "p2"}
    assert _health(kept) == _health(plain)


def test_a_large_membership_check_reads_the_list_once(instances, monkeypatch):
    kept, plain = instances
    kept.add_dynamic_partitions("videos", KEYS)
    asked = [*KEYS, *(f"gone-{i}" for i in range(kept_health.LIST_READ_FROM))]
    reads = []
    storage = kept.event_log_storage
    original = type(storage).get_dynamic_partitions
    monkeypatch.setattr(
        type(storage),
        "get_dynamic_partitions",
        lambda self, name: reads.append(name) or original(self, name),
    )
    assert storage.get_existing_dynamic_partitions("videos", asked) == set(KEYS)
    assert reads == ["videos"]
    assert storage.get_existing_dynamic_partitions("videos", ["p1", "nope"]) == {"p1"}
    assert reads == ["videos"]  # a small check asks the database for its keys
    monkeypatch.undo()
    assert plain.get_existing_dynamic_partitions("videos", asked) == set(KEYS)
