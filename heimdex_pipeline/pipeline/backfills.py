"""Backfills launched without the UI: the same job backfill the UI's "Launch backfill" makes,
written to the instance, where the backfill daemon runs it and the UI shows and cancels it.

The daemon cuts the partitions into runs of HEIMDEX_RUN_BATCH_SIZE neighbours (the chain's
backfill policy); a video whose partition is not in the instance (never run there, or retired)
gets it back first, at the end of the partition order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.utils import check_valid_title
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemotePartitionSetOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.utils import make_new_backfill_id

from heimdex_pipeline.pipeline.pooled_postgres import PARTITIONS_FRESH_S
from heimdex_pipeline.pipeline.runs import ensure_partitions
from heimdex_pipeline.pipeline.stages import ASSET_NAMES
from heimdex_pipeline.pipeline.tags import INDEX_JOB, REEMBED_JOB

# The code location's name in workspace.yaml and deploy/workspace.yaml: the daemon finds the job
# by it. Definitions(...) is Dagster's `__repository__`.
LOCATION_NAME = "heimdex_pipeline"
REPOSITORY_NAME = "__repository__"
JOB_ASSETS = {INDEX_JOB: tuple(ASSET_NAMES), REEMBED_JOB: ("embeddings", "search_index")}
# A backfill daemon that has not beaten for this long is taken for not running.
DAEMON_SILENT_S = 120


class BackfillError(ValueError):
    """A backfill that cannot be launched as asked (an unknown job or asset, no videos)."""


@dataclass(frozen=True)
class LaunchedBackfill:
    backfill_id: str
    job: str
    videos: int
    partitions_added: int
    assets: tuple[str, ...]
    daemon_running: bool


def check_assets(job: str, assets: Sequence[str]) -> tuple[str, ...]:
    """The assets a backfill of `job` may select (all of the job's when none are named)."""
    if job not in JOB_ASSETS:
        raise BackfillError(f"no job {job!r}: backfill {' or '.join(JOB_ASSETS)}")
    unknown = [a for a in assets if a not in JOB_ASSETS[job]]
    if unknown:
        raise BackfillError(
            f"{job} has no asset {', '.join(unknown)}: choose among {', '.join(JOB_ASSETS[job])}"
        )
    return tuple(assets)


def check_title(title: str | None) -> None:
    """Dagster's own rule for a backfill's title, checked before anything is written."""
    try:
        check_valid_title(title)
    except dg.DagsterInvariantViolationError as error:
        raise BackfillError(f"--title {title!r}: {error}") from None


def launch_backfill(
    instance: dg.DagsterInstance,
    job: str,
    video_ids: Sequence[str],
    assets: Sequence[str] = (),
    tags: dict[str, str] | None = None,
    title: str | None = None,
) -> LaunchedBackfill:
    """Write a backfill of `job` over these videos' partitions (of `assets` only, when named)
    for the daemon to run; the videos' partitions are added first where missing."""
    assets = check_assets(job, assets)
    check_title(title)
    if not video_ids:
        raise BackfillError("no video matches: nothing to backfill")
    # in partition order: the daemon's checkpoint walks this list, and ranges follow it
    present, missing = ensure_partitions(instance, sorted(set(video_ids)))
    if missing:
        # the daemon's partition list may be up to this old (pooled_postgres): a backfill it
        # read before seeing these partitions would drop them without a word
        time.sleep(PARTITIONS_FRESH_S)
    names = present + missing
    origin = RemotePartitionSetOrigin(
        repository_origin=RemoteRepositoryOrigin(
            RegisteredCodeLocationOrigin(LOCATION_NAME), REPOSITORY_NAME
        ),
        partition_set_name=f"{job}_partition_set",
    )
    backfill = PartitionBackfill(
        backfill_id=make_new_backfill_id(),
        partition_set_origin=origin,
        status=BulkActionStatus.REQUESTED,
        partition_names=names,
        from_failure=False,
        reexecution_steps=None,
        tags=dict(tags or {}),
        backfill_timestamp=time.time(),
        asset_selection=[dg.AssetKey(a) for a in assets] or None,
        title=title,
        description=f"launched by `heimdex backfill`: {len(names)} videos",
    )
    instance.add_backfill(backfill)
    return LaunchedBackfill(
        backfill.backfill_id,
        job,
        len(names),
        len(missing),
        assets,
        backfill_daemon_running(instance),
    )


def backfill_daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether a backfill daemon beat recently (`heimdex dev` or a deployment's daemon)."""
    beat = instance.get_daemon_heartbeats().get("BACKFILL")
    return beat is not None and time.time() - beat.timestamp < DAEMON_SILENT_S
