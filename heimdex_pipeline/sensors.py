"""Sensors: the inbox (`incoming/` in the object store) and the runs that did not finish.

The inbox sensor reads one page of the listing a tick, after its cursor, and wraps around at the
end: a tick costs the same with 100 or 100,000 videos in the inbox, and every key is looked at
once a cycle. What the page holds is compared with the catalog rows in the same key range:

- a new key (or one whose video was deleted) is registered, gets its partition, and is indexed;
- a known key whose content changed (ETag / size and mtime) is indexed again as a new version;
- a row whose key is gone from the listing is deleted, with everything made from it.
"""

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field

import dagster as dg

from heimdex_pipeline.catalog.models import Video, VideoState
from heimdex_pipeline.catalog.videos import (
    IN_PROGRESS,
    register_video,
    videos_by_id,
    videos_with_store_keys,
)
from heimdex_pipeline.jobs import index_video_job
from heimdex_pipeline.keys import INCOMING_PREFIX
from heimdex_pipeline.lifecycle import delete_video, fail_video
from heimdex_pipeline.outage_reruns import (
    attempt_of,
    outage_videos,
    queue_for_rerun,
    rerun_requests,
    rerunnable,
    retried_errors,
)
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import CatalogResource, ObjectStoreResource, VectorStoreResource
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.objects import InvalidKeyError, ObjectInfo, validate_key
from heimdex_pipeline.transient import describe_error_info
from heimdex_pipeline.video_ids import file_name_of, is_video_name, video_id_for

INDEX_JOB = "index_video"
# Set on a failed run once the failed-runs sensor has dealt with its videos (shown in the UI).
HANDLED_TAG = "heimdex/after_failure"
LEFT_TO_RUN_RETRY = "left to Dagster's run retry"
WILL_RETRY_TAG = "dagster/will_retry"  # set by the instance on a failed run it will retry
# One S3 LIST request a tick. With 30 s between ticks a listing of 10,000 keys is read through
# in 10 ticks; new keys that sort after every known one are found on the next tick.
KEYS_PER_TICK = 1000


@dataclass(frozen=True)
class InboxCursor:
    """Where the next tick's page starts (None: from the beginning)."""

    after: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "InboxCursor":
        if not raw:
            return cls()
        try:
            return cls(after=json.loads(raw).get("after"))
        except (ValueError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps({"after": self.after})


@dataclass(frozen=True)
class InboxChanges:
    """What one page of the inbox listing means for the catalog."""

    to_index: list[tuple[str, ObjectInfo]]  # (video id, object) new or changed, in key order
    removed: list[str]  # video ids whose source is gone
    next_cursor: InboxCursor
    scanned: int
    refused: list[str] = field(default_factory=list)  # keys no path should be, with why


def scan_inbox(
    stores: Stores,
    cursor: InboxCursor,
    instance: dg.DagsterInstance,
    limit: int = KEYS_PER_TICK,
) -> InboxChanges:
    """Compare one page of `incoming/` with the catalog; register what is new (no runs yet)."""
    page = stores.objects.list_page(INCOMING_PREFIX, limit=limit, start_after=cursor.after)
    upto = page.objects[-1].key if page.next_token is not None else None
    listed: dict[str, ObjectInfo] = {}
    refused: list[str] = []
    for info in page.objects:
        if not is_video_name(info.key):
            continue
        try:  # S3 takes keys with `..`, empty parts, backslashes or control characters
            validate_key(info.key)
        except InvalidKeyError as error:
            refused.append(f"skipped {error}; rename or remove the object")
            continue
        listed[info.key] = info
    to_index: list[tuple[str, ObjectInfo]] = []
    with stores.catalog.session() as session:
        rows = videos_with_store_keys(session, INCOMING_PREFIX, cursor.after, upto)
        for key, info in listed.items():
            row = rows.get(key)
            if row is not None and not _needs_run(row, info, instance):
                continue
            uri = stores.objects.uri(key)
            video_id = row.id if row is not None else video_id_for(uri)
            register_video(session, video_id, uri, file_name_of(uri), store_key=key)
            to_index.append((video_id, info))
        gone = [row for key, row in rows.items() if key not in listed and _is_live(row)]
    # Never delete on a listing alone: the object must be missing when asked for directly.
    removed = [row.id for row in gone if not stores.objects.exists(row.store_key or "")]
    next_cursor = InboxCursor(after=page.next_token)  # None at the end: start over next tick
    return InboxChanges(to_index, removed, next_cursor, len(page.objects), refused)


def _needs_run(row: Video, info: ObjectInfo, instance: dg.DagsterInstance) -> bool:
    """A known key needs a run when its video was deleted, when its content changed since it was
    read, or when a run was asked for and never created (a tick that did not complete)."""
    if row.state is VideoState.DELETED:
        return True
    if row.state is VideoState.UPLOADING:
        return not (row.run_key and _run_exists(instance, row.run_key))
    if row.state in IN_PROGRESS:
        return False
    return row.source_version is not None and row.source_version != info.version


def _run_exists(instance: dg.DagsterInstance, run_key: str) -> bool:
    return bool(instance.get_run_ids(dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1))


def _is_live(row: Video) -> bool:
    return row.state is not VideoState.DELETED


def _run_requests(
    instance: dg.DagsterInstance, to_index: list[tuple[str, ObjectInfo]], batch_size: int
) -> tuple[list[str], dict[str, dg.RunRequest]]:
    """New partitions (added together, so contiguous) run in ranges of `batch_size`; a known
    partition (a changed file, a deleted video back) runs alone. Returns the new partitions and
    each video's request; run keys carry the content versions, so asking twice starts one run."""
    new = [(v, i) for v, i in to_index if not instance.has_dynamic_partition(videos.name, v)]
    new_ids = {v for v, _ in new}
    by_video: dict[str, dg.RunRequest] = {}
    for start in range(0, len(new), batch_size):
        chunk = new[start : start + batch_size]
        first, last = chunk[0][0], chunk[-1][0]
        if first == last:
            request = dg.RunRequest(partition_key=first, run_key=f"{first}@{chunk[0][1].version}")
        else:
            versions = "|".join(f"{v}@{i.version}" for v, i in chunk)
            request = dg.RunRequest(
                run_key=f"{first}..{last}@{hashlib.sha256(versions.encode()).hexdigest()[:16]}",
                tags={
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                },
            )
        by_video |= {video_id: request for video_id, _ in chunk}
    for video_id, info in to_index:
        if video_id not in new_ids:
            by_video[video_id] = dg.RunRequest(
                partition_key=video_id, run_key=f"{video_id}@{info.version}"
            )
    return [v for v, _ in new], by_video


def build_inbox_sensor(batch_size: int) -> dg.SensorDefinition:
    """The inbox sensor, starting at most `batch_size` new videos per run."""

    @dg.sensor(
        name="inbox_sensor",
        job_name=INDEX_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Reads {KEYS_PER_TICK} keys of `{INCOMING_PREFIX}` a tick (wrapping around): "
        f"new videos are registered and indexed, {batch_size} to a run; changed ones are "
        "indexed again; removed ones are deleted with everything made from them. Upload "
        "elsewhere, then move the finished file in.",
    )
    def inbox_sensor(
        context: dg.SensorEvaluationContext,
        catalog: CatalogResource,
        objects: ObjectStoreResource,
        vectors: VectorStoreResource,
    ) -> dg.SensorResult:
        stores = Stores(catalog.catalog(), objects.store(), vectors.store())
        changes = scan_inbox(stores, InboxCursor.parse(context.cursor), context.instance)
        for line in changes.refused:
            context.log.warning(line)
        for video_id in changes.removed:
            delete_video(video_id, stores)
        added, by_video = _run_requests(context.instance, changes.to_index, batch_size)
        with stores.catalog.session() as session:
            for video_id, row in videos_by_id(session, by_video).items():
                row.run_key = by_video[video_id].run_key
        requests = list({id(r): r for r in by_video.values()}.values())
        partition_requests = []
        if added:
            partition_requests.append(videos.build_add_request(added))
        if changes.removed:
            partition_requests.append(videos.build_delete_request(changes.removed))
        summary = (
            f"{changes.scanned} keys read, {len(changes.to_index)} to index, "
            f"{len(changes.removed)} removed, {len(changes.refused)} refused"
        )
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=partition_requests,
            cursor=changes.next_cursor.dump(),
            skip_reason=None if requests or changes.removed else f"nothing new ({summary})",
        )

    return inbox_sensor


def run_videos(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The partitions (videos) a run covered."""
    if "dagster/partition" in run.tags:
        return [run.tags["dagster/partition"]]
    start = run.tags.get("dagster/asset_partition_range_start")
    end = run.tags.get("dagster/asset_partition_range_end")
    if not start or not end:
        return []
    keys = instance.get_dynamic_partitions(videos.name)
    if start not in keys or end not in keys:
        return [k for k in (start, end) if k in keys]
    return keys[keys.index(start) : keys.index(end) + 1]


def run_errors(instance: dg.DagsterInstance, run_id: str) -> str:
    """What went wrong in a run, step by step (or in opening its resources)."""
    records = instance.get_records_for_run(
        run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RESOURCE_INIT_FAILURE},
    ).records
    parts = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        error = getattr(event.event_specific_data, "error", None)
        message = describe_error_info(error) if error else "failed"
        if message.startswith("Exceeded max_retries") and event.step_key:
            message = _last_retry_cause(instance, run_id, event.step_key) or message
        where = f"step {event.step_key}" if event.step_key else "opening the resources"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _last_retry_cause(instance: dg.DagsterInstance, run_id: str, step_key: str) -> str | None:
    """Why a step that ran out of retries kept failing: its last retried error."""
    errors = retried_errors(instance, run_id, step_key)
    if not errors or errors[-1] is None:
        return None
    return f"{describe_error_info(errors[-1])} (still failing after {len(errors)} retries)"


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


def build_failed_runs_sensor(outage_reruns: int) -> dg.SensorDefinition:
    """The failed-runs sensor: a failed run's unfinished videos are marked failed, and the
    videos an outage failed run again, at most `outage_reruns` times (`outage_reruns.py`); a run
    Dagster will retry is left to the retry."""

    @dg.run_failure_sensor(
        name="failed_runs_fail_their_videos",
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
        stores = Stores(catalog.catalog(), objects.store(), vectors.store())
        message = context.failure_event.message or "failed"
        outage = outage_videos(instance, run, left_by_run(instance, stores, run))
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
            context.log.info(f"running {len(queued)} videos again: {', '.join(queued[:20])}")
        how = "failed" if attempt == 0 else f"failed (re-run {attempt} of {outage_reruns})"
        marked = mark_unfinished_videos_failed(instance, stores, run, how, message, skip=queued)
        if marked:
            context.log.info(f"marked {len(marked)} videos failed: {', '.join(marked[:20])}")
        instance.add_run_tags(
            run.run_id, {HANDLED_TAG: f"{len(queued)} run again, {len(marked)} marked failed"}
        )
        # None lets Dagster go on to the next failed run in this tick; requests end the tick
        return [request for _, request in requests] or None

    return failed_runs_fail_their_videos


@dg.run_status_sensor(
    name="canceled_runs_fail_their_videos",
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A canceled run's videos that never finished are marked failed.",
)
def canceled_runs_fail_their_videos(
    context: dg.RunStatusSensorContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
) -> None:
    stores = Stores(catalog.catalog(), objects.store(), vectors.store())
    mark_unfinished_videos_failed(
        context.instance, stores, context.dagster_run, "was canceled", "canceled"
    )
