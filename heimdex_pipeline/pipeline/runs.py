"""Run bookkeeping, one copy: which partitions a run covers, how videos are batched into runs,
the requests and tags that launch them, and what a finished run's event log says.

A run of the chain covers one partition or a contiguous range of them (Dagster's partition-range
tags), so every batch of videos is cut into stretches of neighbours in the partition order.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence

import dagster as dg
from dagster import DagsterEventType
from dagster._core.storage.event_log.schema import DynamicPartitionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from sqlalchemy import select

from heimdex_pipeline.library.transient import describe_error_info
from heimdex_pipeline.pipeline.partitions import videos
from heimdex_pipeline.pipeline.tags import (
    HOST_TAG,
    PARTITION_TAG,
    PID_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
)

# Keys looked up a query (SQLite takes at most 32,766 bound values).
LOOKUP_PAGE = 5000


def contiguous_batches(
    order: Sequence[str], chosen: Iterable[str], max_size: int | None = None
) -> list[list[str]]:
    """`chosen` cut into stretches of neighbours in `order` (a run covers a range), each at most
    `max_size` long (no limit when None); keys not in `order` are left out."""
    wanted = set(chosen)
    batches: list[list[str]] = []
    previous = -2
    for position, key in enumerate(order):
        if key not in wanted:
            continue
        full = max_size is not None and batches and len(batches[-1]) >= max_size
        if position == previous + 1 and not full:
            batches[-1].append(key)
        else:
            batches.append([key])
        previous = position
    return batches


def partition_batches(
    instance: dg.DagsterInstance, video_ids: Iterable[str], max_size: int | None = None
) -> list[list[str]]:
    """`contiguous_batches` in the order of the instance's `videos` partitions."""
    return contiguous_batches(instance.get_dynamic_partitions(videos.name), video_ids, max_size)


def partition_tags(batch: Sequence[str]) -> dict[str, str]:
    """The tags that make a run cover `batch` (one partition, or the range first..last)."""
    if len(batch) == 1:
        return {PARTITION_TAG: batch[0]}
    return {RANGE_START_TAG: batch[0], RANGE_END_TAG: batch[-1]}


def local_run_tags(batch: Sequence[str]) -> dict[str, str]:
    """A run this process executes itself: its partitions, and which process on which host runs
    it (so a later command can tell a run whose process is gone from one still going)."""
    return {**partition_tags(batch), HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def run_request(
    batch: Sequence[str], run_key: str, tags: dict[str, str] | None = None
) -> dg.RunRequest:
    """A request for a run over `batch` (one partition or a range), with `tags` added."""
    if len(batch) == 1:
        return dg.RunRequest(run_key=run_key, partition_key=batch[0], tags=dict(tags or {}))
    return dg.RunRequest(run_key=run_key, tags={**(tags or {}), **partition_tags(batch)})


def run_videos(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The partitions (videos) a run covered."""
    if PARTITION_TAG in run.tags:
        return [run.tags[PARTITION_TAG]]
    start, end = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if not start or not end:
        return []
    return partition_range(instance, start, end)


def partition_range(instance: dg.DagsterInstance, start: str, end: str) -> list[str]:
    """The `videos` partitions from `start` to `end` in the instance's order (only those that
    exist: `start` or `end` alone when the other is gone). On a SQL instance: two indexed
    queries, whatever the number of partitions (Dagster's own range lookup reads them all)."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        keys = instance.get_dynamic_partitions(videos.name)
        if start not in keys or end not in keys:
            return [k for k in (start, end) if k in keys]
        return keys[keys.index(start) : keys.index(end) + 1]
    table = DynamicPartitionsTable
    ours = table.c.partitions_def_name == videos.name
    with storage.index_connection() as connection:
        ends = dict(
            connection.execute(
                select(table.c.partition, table.c.id).where(
                    ours, table.c.partition.in_([start, end])
                )
            ).all()
        )
        if start not in ends or end not in ends:
            return [k for k in (start, end) if k in ends]
        inside = table.c.id.between(ends[start], ends[end])
        query = select(table.c.partition).where(ours, inside).order_by(table.c.id)
        return list(connection.execute(query).scalars())


def partitions_in_order(instance: dg.DagsterInstance, keys: Iterable[str]) -> list[str]:
    """Those of `keys` that are `videos` partitions, in the instance's order. On a SQL instance
    the keys are looked up (a page of them a query), not the whole list read: a backfill of
    10,000 videos in a library of 1,000,000 reads 10,000 rows, not 1,000,000."""
    wanted = set(keys)
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        return [k for k in instance.get_dynamic_partitions(videos.name) if k in wanted]
    table = DynamicPartitionsTable
    ours = table.c.partitions_def_name == videos.name
    found: list[tuple[int, str]] = []
    page = sorted(wanted)
    with storage.index_connection() as connection:
        for at in range(0, len(page), LOOKUP_PAGE):
            query = select(table.c.id, table.c.partition).where(
                ours, table.c.partition.in_(page[at : at + LOOKUP_PAGE])
            )
            found.extend(connection.execute(query).tuples())
    return [key for _, key in sorted(found)]


def ensure_partitions(
    instance: dg.DagsterInstance, video_ids: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Give the videos without a partition (never run on this instance, or retired) one, at
    the end of the order, in the order given. Returns those that had one, in partition order,
    and those added."""
    wanted = list(dict.fromkeys(video_ids))
    present = partitions_in_order(instance, wanted)
    have = set(present)
    missing = [v for v in wanted if v not in have]
    if missing:
        instance.add_dynamic_partitions(videos.name, missing)
    return present, missing


def materialized_in_run(
    instance: dg.DagsterInstance, run_id: str, asset_key: dg.AssetKey
) -> set[str]:
    """The partitions of `asset_key` this run materialized."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return {
        event.partition
        for event in (record.event_log_entry.dagster_event for record in records)
        if event is not None and event.asset_key == asset_key and event.partition
    }


def retried_errors(instance: dg.DagsterInstance, run_id: str, step_key: str) -> list:
    """The errors a step of the run was retried for, oldest first (None where not recorded)."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY
    ).records
    return [
        r.event_log_entry.dagster_event.event_specific_data.error
        for r in records
        if r.event_log_entry.dagster_event.step_key == step_key
    ]


def failure_records(instance: dg.DagsterInstance, run_id: str) -> list:
    """The run's step failures and resource-start failures, in order."""
    return instance.get_records_for_run(
        run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RESOURCE_INIT_FAILURE}
    ).records


def run_errors(instance: dg.DagsterInstance, run_id: str) -> str:
    """What went wrong in a run, step by step (or in opening its resources)."""
    parts = []
    for record in failure_records(instance, run_id):
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        error = getattr(event.event_specific_data, "error", None)
        message = describe_error_info(error) if error else "failed"
        if message.startswith("Exceeded max_retries") and event.step_key:
            message = last_retry_cause(instance, run_id, event.step_key) or message
        where = f"step {event.step_key}" if event.step_key else "opening the resources"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def last_retry_cause(instance: dg.DagsterInstance, run_id: str, step_key: str) -> str | None:
    """Why a step that ran out of retries kept failing: its last retried error."""
    errors = retried_errors(instance, run_id, step_key)
    if not errors or errors[-1] is None:
        return None
    return f"{describe_error_info(errors[-1])} (still failing after {len(errors)} retries)"
