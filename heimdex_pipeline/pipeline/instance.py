"""The Dagster instance a command runs its jobs in: created on first use, and cleared of the
runs a command on this host started and whose process is gone."""

from __future__ import annotations

import fcntl
import os
import socket

import dagster as dg

from heimdex_pipeline.pipeline.sensors.failed_runs import mark_unfinished_videos_failed
from heimdex_pipeline.pipeline.tags import HOST_TAG, PID_TAG
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores import Stores


def prepare_dagster_home(settings: Settings) -> None:
    """DAGSTER_HOME made if missing (Dagster refuses one that does not exist), with a
    dagster.yaml for an embedded instance. This process's environment is left as it is: the
    instance is opened from the folder itself, and a process started later names it."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance at DAGSTER_HOME (created under HEIMDEX_HOME when unset)."""
    prepare_dagster_home(settings)
    # A SQLite instance creates its tables on first use, and two processes doing it at once race
    # (alembic_version twice): one at a time.
    with open(settings.dagster_home / ".heimdex-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.from_config(str(settings.dagster_home.absolute()))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def reap_lost_runs(instance: dg.DagsterInstance, stores: Stores) -> list[str]:
    """Runs a command on this host started in its own process and that process is gone (killed,
    crashed, the machine rebooted) stay STARTED forever: no daemon watches them. Fail each one,
    and mark its unfinished videos failed, as run monitoring and the failed-runs sensor do for
    the daemon's runs. Answers the ids of the runs reaped."""
    host = socket.gethostname()
    reaped = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={HOST_TAG: host},
        )
    )
    for run in runs:
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if not pid or pid == os.getpid() or _alive(pid):
            continue
        message = f"its process ({pid} on {host}) ended without finishing it"
        instance.report_run_failed(run, message=message)
        mark_unfinished_videos_failed(instance, stores, run, "was lost", message)
        reaped.append(run.run_id)
    return reaped
