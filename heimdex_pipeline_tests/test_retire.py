"""Retiring the partitions of videos indexed long ago (`heimdex retire`, the hourly sensor): which
go, which a run or backfill spares, and that a retired video stays the catalog's to search,
list, delete and run again (its partition back)."""

import contextlib
import time
import uuid

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import get_video, register_video
from heimdex_pipeline.cli.main import main
from heimdex_pipeline.pipeline.definitions import build_definitions
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.retire import retire_partitions, to_retire
from heimdex_pipeline.pipeline.tags import INDEX_JOB, RANGE_END_TAG, RANGE_START_TAG
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import (
    fresh_database,
    pooled_dagster_yaml,
    stores_of,
    suite_env,
)

STATES = {
    "a": VideoState.INDEXED,
    "b": VideoState.INDEXED,  # a backfill not yet done covers it
    "c": VideoState.FAILED,
    "d": VideoState.INDEXED,
    "e": VideoState.INDEXED,  # a run still going covers e..f
    "f": VideoState.PROCESSING,
    "g": VideoState.INDEXED,
}
ORDER = [f"v-{name}" for name in STATES]


def partitions(settings) -> list[str]:
    """The partitions as another process reads them now (the pooled storage of deploy's
    dagster.yaml keeps a list read for a second in each instance)."""
    instance = dagster_instance(settings)
    try:
        return list(instance.get_dynamic_partitions("videos"))
    finally:
        instance.dispose()


def test_the_oldest_indexed_go_first_and_busy_ones_stay():
    indexed = {"a", "b", "d", "e"}
    assert to_retire(list("abcdef"), indexed, set(), keep=4) == ["a", "b"]
    assert to_retire(list("abcdef"), indexed, {"a"}, keep=4) == ["b", "d"]
    assert to_retire(list("abcdef"), indexed, set(), keep=0) == ["a", "b", "d", "e"]
    assert to_retire(list("abc"), indexed, set(), keep=3) == []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def library(request, tmp_path, tiny_clip, monkeypatch):
    """Seven videos in the catalog, a partition each in that order; a run going over e..f and
    a backfill of b not done. On the embedded instance, and on PostgreSQL (the catalog and
    Heimdex's pooled Dagster storage, as deploy/dagster.yaml has it)."""
    home = tmp_path / "home"
    extra = {}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server_url")
        catalog = request.getfixturevalue("postgres_url")
        databases = contextlib.ExitStack()
        request.addfinalizer(databases.close)
        url = databases.enter_context(fresh_database(server))
        url = url.replace("postgresql://", "postgresql+psycopg2://")
        (home / "dagster").mkdir(parents=True)
        (home / "dagster" / "dagster.yaml").write_text(pooled_dagster_yaml(url))
        extra["HEIMDEX_DATABASE_URL"] = catalog
    for name, value in suite_env(home, tiny_clip, **extra).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("HEIMDEX_KEEP_PARTITIONS", raising=False)
    settings = load_settings()
    with stores_of(settings).catalog.session() as session:
        for name, state in STATES.items():
            register_video(
                session, f"v-{name}", f"file:///{name}.mp4", f"{name}.mp4", owner="local"
            ).state = state
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("videos", ORDER)
    instance.add_run(
        dg.DagsterRun(
            job_name=INDEX_JOB, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED,
            tags={RANGE_START_TAG: "v-e", RANGE_END_TAG: "v-f"},
        )
    )  # fmt: skip
    instance.add_backfill(
        PartitionBackfill(
            backfill_id="reembedb", partition_set_origin=None, status=BulkActionStatus.REQUESTED,
            partition_names=["v-b"], from_failure=False, reexecution_steps=None, tags={},
            backfill_timestamp=time.time(),
        )
    )  # fmt: skip
    yield settings, instance
    instance.dispose()


def test_retire_keeps_the_newest_and_spares_what_runs(library, capsys):
    settings, _ = library
    assert main(["retire", "--keep", "3", "--dry-run"]) == 0
    assert "would retire 3 of 7 video partitions, 4 kept" in capsys.readouterr().err
    assert partitions(settings) == ORDER  # a dry run changes nothing

    assert main(["retire", "--keep", "3"]) == 0
    err = capsys.readouterr().err
    # a, d and g go; b (backfill) and e (run) are spared, c failed and f processing never go,
    # so one more than asked for stays
    assert "retired 3 of 7 video partitions, 4 kept (1 indexed video spared" in err
    assert partitions(settings) == ["v-b", "v-c", "v-e", "v-f"]
    with stores_of(settings).catalog.session() as session:
        assert get_video(session, "v-a").state is VideoState.INDEXED  # the catalog keeps it

    assert main(["videos", "--json"]) == 0
    assert '"v-a"' in capsys.readouterr().out  # still listed
    assert main(["backfill", "--video", "v-a"]) == 0  # run again: its partition comes back
    assert partitions(settings)[-1] == "v-a"
    assert main(["delete", "v-d"]) == 0  # a retired video can be deleted
    with stores_of(settings).catalog.session() as session:
        assert get_video(session, "v-d").state is VideoState.DELETED


def test_retire_needs_a_number_and_the_sensor_runs_when_one_is_set(library, monkeypatch, capsys):
    settings, instance = library
    assert main(["retire"]) == 2
    assert "--keep N or HEIMDEX_KEEP_PARTITIONS" in capsys.readouterr().err
    names = {s.name for s in build_definitions(settings).sensors}
    assert "retire_old_partitions" not in names  # off unless asked for

    monkeypatch.setenv("HEIMDEX_KEEP_PARTITIONS", "5")
    settings = load_settings()
    definitions = build_definitions(settings)
    (sensor,) = [s for s in definitions.sensors if s.name == "retire_old_partitions"]
    resources = {"catalog": definitions.resources["catalog"]}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    assert "retired 2 of 7 partitions, 5 kept" in result.skip_message
    assert partitions(settings) == ["v-b", "v-c", "v-e", "v-f", "v-g"]


def test_a_video_taken_up_while_retiring_gets_its_partition_back(library):
    """An upload of v-a registered between the first look at the catalog and the deletion (no
    longer indexed when asked again): its partition comes straight back, at the end."""
    settings, instance = library
    indexed = {f"v-{name}" for name, state in STATES.items() if state is VideoState.INDEXED}
    answers = iter([indexed, indexed - {"v-a"}])
    done = retire_partitions(instance, lambda: next(answers), keep=3)
    assert done.retired == ["v-d", "v-g"]
    assert partitions(settings) == ["v-b", "v-c", "v-e", "v-f", "v-a"]
