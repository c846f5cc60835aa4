"""Videos an outage failed are run again by the failed-runs sensor, a bounded number of times.

A video counts as failed by an outage when a step set it aside for a transient fault that
outlived the step's retries (the run's failure names it), or when the run stopped before
finishing it (whether marked failed yet or not) and every step failure of the run was a
transient fault (a dropped database
connection, an unreachable store). Bad input never is. Each re-run is tagged with its attempt
and first waits for the stores to answer (`HEIMDEX_OUTAGE_WAIT_S`, in the chain's first step);
past `HEIMDEX_OUTAGE_RERUNS` the videos stay `failed` for the operator.

Dagster's own run retries are for runs with no step failure (a lost worker, a crash outside the
steps); these re-runs are for the step failures Dagster does not retry
(`retry_on_asset_or_op_failure` is off so that bad input is never retried). A failed run Dagster
will retry (`dagster/will_retry`) is left to it, so the two never act on the same run.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import IN_PROGRESS, videos_by_id
from heimdex_pipeline.library.lifecycle import purge_what_can_be_reached
from heimdex_pipeline.library.transient import error_info_is_transient
from heimdex_pipeline.pipeline.runs import (
    failure_records,
    partition_batches,
    retried_errors,
    run_request,
)
from heimdex_pipeline.pipeline.tags import (
    ATTEMPT_TAG,
    MODE_TAG,
    OUTAGE_VIDEOS,
    REEMBED_MODE,
    RERUN_OF_TAG,
)
from heimdex_pipeline.stores import Stores


def attempt_of(run: dg.DagsterRun) -> int:
    """How many outage re-runs came before this run (0 for a first run)."""
    try:
        return max(0, int(run.tags.get(ATTEMPT_TAG, "0")))
    except ValueError:
        return 0


def _step_failure_is_transient(instance: dg.DagsterInstance, run_id: str, record) -> bool:
    event = record.event_log_entry.dagster_event
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return False
    if (error.message or "").startswith("Exceeded max_retries") and event.step_key:
        retried = retried_errors(instance, run_id, event.step_key)
        error = retried[-1] if retried and retried[-1] is not None else error
    return error_info_is_transient(error)


def outage_videos(
    instance: dg.DagsterInstance, run: dg.DagsterRun, left_undone: Iterable[str]
) -> list[str]:
    """The run's videos an outage failed (see the module docstring); `left_undone` are those
    the run's failure left unfinished (not failed by a step's verdict)."""
    if run.tags.get(MODE_TAG) == REEMBED_MODE:  # a failed re-embedding leaves videos as they were
        return []
    records = failure_records(instance, run.run_id)
    found: list[str] = []
    crashes = []  # step failures that are not the chain's own verdict on its videos
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        verdict = getattr(event.event_specific_data, "user_failure_data", None)
        if verdict is not None and OUTAGE_VIDEOS in (verdict.metadata or {}):
            found += list(verdict.metadata[OUTAGE_VIDEOS].value)
        else:
            crashes.append(record)
    if crashes and all(_step_failure_is_transient(instance, run.run_id, r) for r in crashes):
        found += list(left_undone)
    return list(dict.fromkeys(found))


def rerun_requests(
    instance: dg.DagsterInstance, run: dg.DagsterRun, video_ids: Iterable[str]
) -> list[tuple[list[str], dg.RunRequest]]:
    """One request per range of neighbouring videos, tagged with the next attempt, with the
    videos it covers. Run keys name the failed run, so a tick evaluated twice asks once."""
    attempt = attempt_of(run) + 1
    tags = {ATTEMPT_TAG: str(attempt), RERUN_OF_TAG: run.run_id}
    return [
        (keys, run_request(keys, f"outage-rerun:{run.run_id}:{keys[0]}", tags))
        for keys in partition_batches(instance, video_ids)
    ]


def rerunnable(stores: Stores, video_ids: Iterable[str]) -> list[str]:
    """Of these videos, those still unfinished or failed (one indexed or deleted since stays)."""
    with stores.catalog.session() as session:
        rows = videos_by_id(session, list(video_ids))
    return [v for v, row in rows.items() if row.state in (*IN_PROGRESS, VideoState.FAILED)]


def queue_for_rerun(
    stores: Stores, requests: list[tuple[list[str], dg.RunRequest]], reason: str
) -> None:
    """Videos about to run again wait as `uploading`, with why on their row and the run key of
    the run that will index them; what the failed run had made of them is removed first."""
    run_keys = {video_id: request.run_key for keys, request in requests for video_id in keys}
    for video_id in run_keys:
        purge_what_can_be_reached(video_id, stores)
    with stores.catalog.session() as session:
        for video_id, row in videos_by_id(session, list(run_keys)).items():
            row.state = VideoState.UPLOADING
            row.error_text = reason[:2000]
            row.indexed_at = None
            row.run_key = run_keys[video_id]
