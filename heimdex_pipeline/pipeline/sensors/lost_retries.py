"""Failed runs left to Dagster's run retry that never got one.

The failed-runs sensor leaves a run tagged `dagster/will_retry` to Dagster's retry daemon. The
daemon can lose it: when launching the retry fails (PostgreSQL restarting, say) it gives up on
that run for good (it tags it `dagster/will_retry=false`; its cursor has moved on), and a
daemon down when the run failed may never look. The run's videos would then stay `processing`
with nothing left to finish them. This sensor finds such runs (no retry run a few minutes after
the failure, or the daemon's own "false") and does what the failed-runs sensor does, counting
their undone videos as an outage's: run again, at most `HEIMDEX_OUTAGE_RERUNS` times.
"""

from __future__ import annotations

import time

import dagster as dg

from heimdex_pipeline.pipeline.jobs import index_video_job
from heimdex_pipeline.pipeline.resources import (
    CatalogResource,
    ObjectStoreResource,
    VectorStoreResource,
    stores_from,
)
from heimdex_pipeline.pipeline.runs import run_errors
from heimdex_pipeline.pipeline.sensors.failed_runs import handle_failed_run
from heimdex_pipeline.pipeline.tags import (
    AUTO_RETRY_RUN_ID_TAG,
    HANDLED_TAG,
    LEFT_TO_RUN_RETRY,
    PARENT_RUN_ID_TAG,
    WILL_RETRY_TAG,
)

RETRY_GRACE_S = 180  # how long after a run failed its retry may take to appear
RUNS_PER_TICK = 50


def retry_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """The id of the run that re-executes this one, if there is one."""
    if run.tags.get(AUTO_RETRY_RUN_ID_TAG):
        return run.tags[AUTO_RETRY_RUN_ID_TAG]
    children = instance.get_run_ids(dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1)
    return children[0] if children else None


def retry_lost(record: dg.RunRecord, now: float, grace_s: float) -> bool:
    """No retry is coming for this failed run: the daemon said so, or none came in `grace_s`."""
    if record.dagster_run.tags.get(WILL_RETRY_TAG, "").lower() == "false":
        return True
    ended = record.end_time or record.update_timestamp.timestamp()
    return now - ended >= grace_s


def build_lost_retries_sensor(
    outage_reruns: int, interval_s: int = 30, grace_s: float = RETRY_GRACE_S
) -> dg.SensorDefinition:
    """The lost-retries sensor (see the module docstring); it looks every `interval_s` s."""

    @dg.sensor(
        name="failed_runs_whose_retry_never_came",
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=index_video_job,
        description="A failed run left to Dagster's run retry that got none (the retry could "
        f"not be launched, or none came within {grace_s:.0f} s): its unfinished videos are run "
        f"again, at most {outage_reruns} times, or marked failed.",
    )
    def failed_runs_whose_retry_never_came(
        context: dg.SensorEvaluationContext,
        catalog: CatalogResource,
        objects: ObjectStoreResource,
        vectors: VectorStoreResource,
    ) -> list[dg.RunRequest] | dg.SkipReason:
        instance = context.instance
        waiting = instance.get_run_records(
            dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.FAILURE], tags={HANDLED_TAG: LEFT_TO_RUN_RETRY}
            ),
            limit=RUNS_PER_TICK,
        )
        now, requests, retried = time.time(), [], 0
        stores = stores_from(catalog, objects, vectors)
        for record in waiting:
            run = record.dagster_run
            child = retry_of(instance, run)
            if child is not None:  # the retry came: it carries the videos on
                instance.add_run_tags(run.run_id, {HANDLED_TAG: f"retried as {child[:8]}"})
                retried += 1
                continue
            if not retry_lost(record, now, grace_s):
                continue
            message = run_errors(instance, run.run_id) or "failed"
            context.log.warning(f"run {run.run_id[:8]} got no retry from Dagster")
            requests += handle_failed_run(
                context.log, instance, stores, run, message, outage_reruns, retry_lost=True
            )
        if requests:
            return requests
        return dg.SkipReason(f"{len(waiting)} runs left to Dagster's retry, {retried} retried")

    return failed_runs_whose_retry_never_came
