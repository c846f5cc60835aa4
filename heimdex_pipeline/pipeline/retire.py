"""Partitions retired: Dagster keeps the `videos` partitions of the videos it works on, not one
for every video the library ever indexed.

What reads the partition list (the asset's partitions page once its health is cached, the
health query, run creation, the webserver's memory) is then bounded by what is kept, not by the
library. Dagster rebuilds an asset's health whenever the list changes, from every key the asset
ever had, retired ones included, unless the storage reads it from the kept partitions
(`kept_health.py`, `kept_partitions_def` in deploy/dagster.yaml; README, "What grows with the
library").

A retired video stays in the catalog (the record of every video): search, listing, deletion and
its media are untouched; its materializations stay in Dagster's event log (its history, with
each run, under the asset's Events for that partition key). Running it again (`heimdex
backfill`, `heimdex reembed`, the inbox seeing its file change) adds its partition back first,
at the end of the order. Only indexed videos are retired, oldest partitions first, and none
that a run not yet finished or a backfill not yet done covers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.execution.backfill import (
    BULK_ACTION_TERMINAL_STATUSES,
    BulkActionsFilter,
    BulkActionStatus,
)
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.storage.event_log.schema import DynamicPartitionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

from heimdex_pipeline.pipeline.partitions import videos
from heimdex_pipeline.pipeline.pooled_postgres import CachedPartitionsEventLogStorage
from heimdex_pipeline.pipeline.runs import LOOKUP_PAGE, run_videos

UNFINISHED_RUNS = [*IN_PROGRESS_RUN_STATUSES, dg.DagsterRunStatus.NOT_STARTED]
UNFINISHED_BACKFILLS = [s for s in BulkActionStatus if s not in BULK_ACTION_TERMINAL_STATUSES]


@dataclass(frozen=True)
class Retired:
    partitions: int  # in the instance before
    retired: list[str]
    busy: int  # indexed videos past the kept number left alone: a run or backfill covers them

    @property
    def kept(self) -> int:
        return self.partitions - len(self.retired)


def busy_videos(instance: dg.DagsterInstance) -> set[str] | None:
    """Videos that a run not yet finished or a backfill not yet done covers; None when a
    backfill does not list its partitions (one of assets, launched from the UI): any may be."""
    busy: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED_RUNS)):
        busy.update(run_videos(instance, run))
    for backfill in instance.get_backfills(
        filters=BulkActionsFilter(statuses=UNFINISHED_BACKFILLS)
    ):
        if backfill.partition_names is None:
            return None
        busy.update(backfill.partition_names)
    return busy


def to_retire(order: Sequence[str], indexed: set[str], busy: set[str], keep: int) -> list[str]:
    """The indexed, not busy, videos of the oldest partitions in `order` that leave at most
    `keep` (or as few as can be left)."""
    excess = len(order) - keep
    chosen: list[str] = []
    for key in order:
        if len(chosen) >= excess:
            break
        if key in indexed and key not in busy:
            chosen.append(key)
    return chosen


def delete_partitions(instance: dg.DagsterInstance, keys: Sequence[str]) -> None:
    """These `videos` partitions deleted (a page of keys a statement on a SQL instance)."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        for key in keys:
            instance.delete_dynamic_partition(videos.name, key)
        return
    table = DynamicPartitionsTable

    def delete() -> None:
        with storage.index_connection() as connection:
            for at in range(0, len(keys), LOOKUP_PAGE):
                connection.execute(
                    table.delete().where(
                        table.c.partitions_def_name == videos.name,
                        table.c.partition.in_(list(keys[at : at + LOOKUP_PAGE])),
                    )
                )

    if isinstance(storage, CachedPartitionsEventLogStorage):
        storage.forget_partitions(delete)  # its list read once a second: not a stale one
    else:
        delete()


def retire_partitions(
    instance: dg.DagsterInstance,
    indexed: Callable[[], set[str]],
    keep: int,
    dry_run: bool = False,
) -> Retired:
    """Retire the partitions of the oldest indexed videos (`indexed()`: the ids the catalog says
    are indexed now) so that at most `keep` stay, sparing videos a run or backfill covers.

    A video that an upload or a backfill took up while this ran (no longer indexed, or busy,
    when asked again after the deletion) gets its partition straight back, at the end."""
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, not {keep}")
    order = list(instance.get_dynamic_partitions(videos.name))
    if len(order) <= keep:
        return Retired(len(order), [], 0)
    were_indexed = indexed()
    busy = busy_videos(instance)
    if busy is None:
        busy = set(order)
    chosen = to_retire(order, were_indexed, busy, keep)
    spared = sum(1 for key in order if key in were_indexed and key in busy)
    if not dry_run and chosen:
        delete_partitions(instance, chosen)
        busy_now, indexed_now = busy_videos(instance), indexed()
        back = [k for k in chosen if busy_now is None or k in busy_now or k not in indexed_now]
        if back:
            instance.add_dynamic_partitions(videos.name, back)
            taken = set(back)
            chosen = [k for k in chosen if k not in taken]
    return Retired(len(order), chosen, min(spared, len(order) - keep - len(chosen)))
