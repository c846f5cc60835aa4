"""Runs that did not finish: their videos are marked failed with the run and the step, and the
videos an outage failed are run again (`outage_reruns.py`); a run Dagster will retry is left to
the retry, so the two never act on the same run."""

import logging
from collections.abc import Collection

import dagster as dg

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import IN_PROGRESS, videos_by_id
from heimdex_pipeline.library.lifecycle import fail_video
from heimdex_pipeline.pipeline.jobs import index_video_job
from heimdex_pipeline.pipeline.resources import (
    CatalogResource,
    ObjectStoreResource,
    VectorStoreResource,
    stores_from,
)
from heimdex_pipeline.pipeline.runs import run_errors, run_videos
from heimdex_pipeline.pipeline.sensors.outage_reruns import (
    attempt_of,
    outage_videos,
    queue_for_rerun,
    rerun_requests,
    rerunnable,
)
from heimdex_pipeline.pipeline.tags import (
    HANDLED_TAG,
    LEFT_TO_RUN_RETRY,
    MODE_TAG,
    REEMBED_MODE,
    WILL_RETRY_TAG,
)
from heimdex_pipeline.stores import Stores


def _run_rows(instance: dg.DagsterInstance, stores: Stores, run: dg.DagsterRun) -> dict:
    with stores.catalog.session() as session:
        return videos_by_id(session, run_videos(instance, run))


def unfinished_videos(
    instance: dg.DagsterInstance, stores: Stores, run: dg.DagsterRun
) -> list[str]:
    """Videos of an ended run still `uploading`, `validating` or `processing`: it never
    finished them (a video that failed in a step already says why; a finished one is done)."""
    rows = _run_rows(instance, stores, run)
    return [video_id for video_id, row in rows.items() if row.state in IN_PROGRESS]


def left_by_run(instance: dg.DagsterInstance, stores: Stores, run: dg.DagsterRun) -> list[str]:
    """The run's videos its failure left undone: unfinished, or marked failed for the run's
    failure (by whoever saw it end first: this sensor or `heimdex index`), not by a step."""
    prefix = run_failure_prefix(run)
    return [
        video_id
        for video_id, row in _run_rows(instance, stores, run).items()
        if row.state in IN_PROGRESS
        or (row.state is VideoState.FAILED and (row.error_text or "").startswith(prefix))
    ]


def run_failure_prefix(run: dg.DagsterRun) -> str:
    """How the reason of a video failed for its run's failure begins."""
    return f"run {run.run_id[:8]} "


def mark_unfinished_videos_failed(
    instance: dg.DagsterInstance,
    stores: Stores,
    run: dg.DagsterRun,
    how: str,
    message: str,
    skip: Collection[str] = (),
) -> list[str]:
    """Mark an ended run's unfinished videos (but `skip`) `failed`, saying which run ended how
    and where, and remove what was made of them."""
    marked = [v for v in unfinished_videos(instance, stores, run) if v not in skip]
    if not marked:
        return []
    reason = f"{run_failure_prefix(run)}{how}: {run_errors(instance, run.run_id) or message}"
    for video_id in marked:  # nothing half-made stays where it can be reached
        fail_video(video_id, stores, reason[:2000])
    return marked


def will_be_retried(run: dg.DagsterRun) -> bool:
    """Whether Dagster's run retries will run this failed run again: the instance decided
    (`dagster/will_retry`) when the run failed, before any sensor saw it."""
    return run.tags.get(WILL_RETRY_TAG, "").lower() == "true"


def handle_failed_run(
    log: logging.Logger | logging.LoggerAdapter,
    instance: dg.DagsterInstance,
    stores: Stores,
    run: dg.DagsterRun,
    message: str,
    outage_reruns: int,
    retry_lost: bool = False,
) -> list[dg.RunRequest]:
    """What the failed-runs sensor does with a failed run: the videos an outage failed are
    queued to run again (the requests returned), at most `outage_reruns` times; the rest of its
    unfinished videos are marked failed; the run is tagged with what was done. `retry_lost`: the
    run was left to Dagster's run retry, which never came (`lost_retries.py`): all its undone
    videos count as an outage's, since the instance judged the failure worth running again."""
    left = left_by_run(instance, stores, run)
    if retry_lost and run.tags.get(MODE_TAG) != REEMBED_MODE:
        outage = left
    else:
        outage = outage_videos(instance, run, left)
    attempt = attempt_of(run)
    requests = []
    if outage and attempt < outage_reruns:
        requests = rerun_requests(instance, run, rerunnable(stores, outage))
        errors = run_errors(instance, run.run_id) or message
        queue_for_rerun(
            stores,
            requests,
            f"{run_failure_prefix(run)}failed: {errors}; run again "
            f"({attempt + 1} of {outage_reruns} re-runs after an outage)",
        )
    queued = [v for keys, _ in requests for v in keys]
    if queued:
        log.info(f"running {len(queued)} videos again: {', '.join(queued[:20])}")
    how = "failed" if attempt == 0 else f"failed (re-run {attempt} of {outage_reruns})"
    marked = mark_unfinished_videos_failed(instance, stores, run, how, message, skip=queued)
    if marked:
        log.info(f"marked {len(marked)} videos failed: {', '.join(marked[:20])}")
    done = f"{len(queued)} run again, {len(marked)} marked failed"
    if retry_lost:
        done = f"Dagster's run retry never came: {done}"
    instance.add_run_tags(run.run_id, {HANDLED_TAG: done})
    return [request for _, request in requests]


def build_failed_runs_sensor(outage_reruns: int, interval_s: int = 30) -> dg.SensorDefinition:
    """The failed-runs sensor: a failed run's unfinished videos are marked failed, and the
    videos an outage failed run again, at most `outage_reruns` times (`outage_reruns.py`); a run
    Dagster will retry is left to the retry. It looks every `interval_s` seconds."""

    @dg.run_failure_sensor(
        name="failed_runs_fail_their_videos",
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        request_job=index_video_job,
        description="A failed run's videos that never finished (a lost worker, a crash, a "
        "timeout) are marked failed with the run and the step, once Dagster's run retries are "
        "spent (a run Dagster will retry is left to it). Videos an outage failed (a "
        "database or store that could not be reached) are run again, at most "
        f"{outage_reruns} times.",
    )
    def failed_runs_fail_their_videos(
        context: dg.RunFailureSensorContext,
        catalog: CatalogResource,
        objects: ObjectStoreResource,
        vectors: VectorStoreResource,
    ) -> list[dg.RunRequest] | None:
        run, instance = context.dagster_run, context.instance
        if will_be_retried(run):
            # Dagster's run retry (a lost worker, a crash outside the steps) takes the videos
            # on: marking them failed or running them again here would race with it
            instance.add_run_tags(run.run_id, {HANDLED_TAG: LEFT_TO_RUN_RETRY})
            return None
        stores = stores_from(catalog, objects, vectors)
        message = context.failure_event.message or "failed"
        requests = handle_failed_run(context.log, instance, stores, run, message, outage_reruns)
        # None lets Dagster go on to the next failed run in this tick; requests end the tick
        return requests or None

    return failed_runs_fail_their_videos


def build_canceled_runs_sensor(interval_s: int = 30) -> dg.SensorDefinition:
    """The canceled-runs sensor: a canceled run's unfinished videos are marked failed. It looks
    every `interval_s` seconds."""

    @dg.run_status_sensor(
        name="canceled_runs_fail_their_videos",
        run_status=dg.DagsterRunStatus.CANCELED,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="A canceled run's videos that never finished are marked failed.",
    )
    def canceled_runs_fail_their_videos(
        context: dg.RunStatusSensorContext,
        catalog: CatalogResource,
        objects: ObjectStoreResource,
        vectors: VectorStoreResource,
    ) -> None:
        stores = stores_from(catalog, objects, vectors)
        mark_unfinished_videos_failed(
            context.instance, stores, context.dagster_run, "was canceled", "canceled"
        )

    return canceled_runs_fail_their_videos
