"""`heimdex index`: register local files, then run the `index_video` job on them in-process.

It is the same job the inbox sensor and backfills launch, run in this process in batches of
HEIMDEX_RUN_BATCH_SIZE videos; the runs land in the Dagster instance at DAGSTER_HOME, so they
show in the UI afterwards under `index_video`.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg
from dagster import DagsterEventType
from sqlalchemy import select

from heimdex_pipeline.catalog.database import Catalog, CatalogNotReadyError, upgrade
from heimdex_pipeline.catalog.models import SearchModel, Video, VideoState
from heimdex_pipeline.catalog.videos import (
    UnknownVideoError,
    active_model,
    missing_from_model,
    register_video,
    scenes_of,
    videos_by_id,
)
from heimdex_pipeline.clip_model import ClipLoadError, check_weights, is_weights_tag
from heimdex_pipeline.jobs import INDEX_JOB, REEMBED_JOB
from heimdex_pipeline.lifecycle import delete_video
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.sensors import mark_unfinished_videos_failed
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores import Stores, open_stores
from heimdex_pipeline.video_ids import is_video_file, video_id_for

# Our own progress lines say what happened; the run logs stay in the instance for the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
DONE = (VideoState.INDEXED, VideoState.FAILED)


@dataclass
class IndexOutcome:
    """What `heimdex index --json` prints for one input."""

    video_id: str
    source: str
    state: str
    error: str | None
    duration_s: float | None
    frame_count: int | None
    frames_decoded: int
    seconds: float
    scenes: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def source_uri_of(path: Path) -> str:
    """A local file's URI: its resolved absolute path; a path that cannot be resolved (a symlink
    loop) keeps its absolute form, and fails in its own step like any unreadable input."""
    try:
        return path.expanduser().resolve().as_uri()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path.expanduser())).as_uri()


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the video files in them (recursively), sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            is_dir = path.is_dir()
        except OSError:  # a symlink loop, a name too long: let its step say what is wrong
            is_dir = False
        if is_dir:
            found.extend(sorted(p for p in path.rglob("*") if _safe_is_video_file(p)))
        else:
            found.append(path)
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(source_uri_of(path), path)
    return list(unique.values())


def _safe_is_video_file(path: Path) -> bool:
    try:
        return is_video_file(path)
    except OSError:
        return False


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance at DAGSTER_HOME (created under HEIMDEX_HOME when unset)."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    # A SQLite instance creates its tables on first use, and two processes doing it at once race
    # (alembic_version twice): one at a time.
    with open(settings.dagster_home / ".heimdex-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.get()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare_catalog(settings: Settings) -> None:
    """An embedded (SQLite) catalog is migrated here, the CLI being its deployment; a server's
    is migrated by `heimdex db upgrade`, and checked."""
    if settings.database_url.startswith("sqlite"):
        try:
            Catalog(settings.database_url).check_schema()  # the usual case: nothing to do
        except CatalogNotReadyError:
            upgrade(settings.database_url)


def batches(instance: dg.DagsterInstance, video_ids: list[str], batch_size: int) -> list[list[str]]:
    """Runs to launch: contiguous stretches of the partition list (a run covers a range),
    at most `batch_size` videos each."""
    position = {key: n for n, key in enumerate(instance.get_dynamic_partitions(videos.name))}
    ordered = sorted(set(video_ids), key=position.__getitem__)
    runs: list[list[str]] = []
    for video_id in ordered:
        current = runs[-1] if runs else None
        if (
            current is not None
            and len(current) < batch_size
            and position[video_id] == position[current[-1]] + 1
        ):
            current.append(video_id)
        else:
            runs.append([video_id])
    return runs


HOST_TAG, PID_TAG = "heimdex/host", "heimdex/pid"


def run_tags(batch: list[str]) -> dict[str, str]:
    """The partition tags of a run over `batch`, and which process on which host runs it (so a
    later command can tell a run whose process is gone from one still going)."""
    where = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    if len(batch) == 1:
        return {"dagster/partition": batch[0], **where}
    return {
        "dagster/asset_partition_range_start": batch[0],
        "dagster/asset_partition_range_end": batch[-1],
        **where,
    }


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


class _Progress:
    """Reports each video as it reaches `indexed` or `failed`, by watching the catalog."""

    def __init__(self, stores: Stores, report: Callable[[str], None]):
        self._stores, self._report = stores, report
        self._pending: set[str] = set()
        self._stop = threading.Event()

    def watch(self, video_ids: list[str]) -> threading.Thread:
        self._pending = set(video_ids)
        self._stop.clear()
        thread = threading.Thread(target=self._loop, name="index-progress", daemon=True)
        thread.start()
        return thread

    def _poll(self) -> None:
        with self._stores.catalog.session() as session:
            rows = videos_by_id(session, self._pending)
        for video_id, row in rows.items():
            if row.state in DONE:
                self._pending.discard(video_id)
                self._report(video_id)

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self._poll()

    def finish(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join()
        self._poll()
        for video_id in sorted(self._pending):  # the run ended without finishing them
            self._report(video_id)
        self._pending.clear()


def _materialized(instance: dg.DagsterInstance, run_id: str, asset: str) -> set[str]:
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return {
        event.partition
        for event in (record.event_log_entry.dagster_event for record in records)
        if event is not None and event.asset_key == dg.AssetKey(asset) and event.partition
    }


def _per_video_figures(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, float]]:
    """Seconds of work and frames decoded per video, from the run's materializations."""
    figures: dict[str, dict[str, float]] = {}
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.partition is None:
            continue
        metadata = event.step_materialization_data.materialization.metadata
        mine = figures.setdefault(event.partition, {"seconds": 0.0, "frames_decoded": 0})
        for name in mine:
            if name in metadata:
                mine[name] += float(metadata[name].value)
    return figures


def index_paths(
    paths: Iterable[str | Path],
    settings: Settings,
    on_done: Callable[[int, int, IndexOutcome], None] | None = None,
) -> list[IndexOutcome]:
    """Index every input, batched into runs of the `index_video` job, going on past bad ones.
    Raises ClipLoadError before touching anything if the model cannot be loaded."""
    from heimdex_pipeline.definitions import build_definitions

    precheck_weights(settings)
    inputs = expand_inputs(paths)
    prepare_catalog(settings)
    stores = open_stores(settings)
    instance = dagster_instance(settings)
    reap_lost_runs(instance, stores)
    job = build_definitions(settings).resolve_job_def(INDEX_JOB)

    by_id: dict[str, Path] = {}
    with stores.catalog.session() as session:
        for path in inputs:
            uri = source_uri_of(path)
            video_id = video_id_for(uri)
            video = register_video(session, video_id, uri, path.name)
            video.state, video.error_text = VideoState.UPLOADING, None  # queued again
            by_id[video_id] = path
    known = set(instance.get_dynamic_partitions(videos.name))
    instance.add_dynamic_partitions(videos.name, [v for v in by_id if v not in known])

    outcomes: dict[str, IndexOutcome] = {}
    figures: dict[str, dict[str, float]] = {}
    started = time.perf_counter()

    def report(video_id: str) -> None:
        outcomes[video_id] = _outcome(stores, video_id, by_id[video_id], figures, started)
        if on_done is not None:
            on_done(len(outcomes), len(by_id), outcomes[video_id])

    progress = _Progress(stores, report)
    for batch in batches(instance, list(by_id), settings.run_batch_size):
        watcher = progress.watch(batch)
        result = job.execute_in_process(
            instance=instance,
            tags=run_tags(batch),
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
        figures.update(_per_video_figures(instance, result.run_id))
        if not result.success:  # what a step could not mark itself (a crash, a bad resource)
            mark_unfinished_videos_failed(
                instance, stores, result.dagster_run, "failed", "the run failed"
            )
        progress.finish(watcher)
        raise_model_error(result)
    for video_id in outcomes:  # the figures are complete only once each run ended
        outcomes[video_id] = _outcome(stores, video_id, by_id[video_id], figures, None)
    return [outcomes[video_id] for video_id in by_id]


def _outcome(
    stores: Stores,
    video_id: str,
    path: Path,
    figures: dict[str, dict[str, float]],
    started: float | None,
) -> IndexOutcome:
    with stores.catalog.session() as session:
        video = videos_by_id(session, [video_id])[video_id]
        state, error = video.state, video.error_text
        if state not in DONE:  # the run ended (or was killed) before this video finished
            state, error = VideoState.FAILED, error or "the run ended before this video finished"
        rows = scenes_of(session, video_id) if state is VideoState.INDEXED else []
        mine = figures.get(video_id, {})
        seconds = time.perf_counter() - started if started is not None else mine.get("seconds", 0)
        return IndexOutcome(
            video_id=video_id,
            source=str(path),
            state=state.value,
            error=error,
            duration_s=video.duration_s,
            frame_count=video.frame_count,
            frames_decoded=int(mine.get("frames_decoded", 0)),
            seconds=round(float(seconds), 3),
            scenes=[
                {
                    "scene_id": row.id,
                    "index": row.index,
                    "start_s": round(row.start_s, 6),
                    "end_s": round(row.end_s, 6),
                    "thumbnail_key": row.thumbnail_key,
                }
                for row in rows
            ],
        )


def precheck_weights(settings: Settings) -> None:
    """Refuse at once, before registering anything, weights that are a missing file or folder.
    A weights tag is checked by the run's CLIP worker (it needs open_clip's registry, whose
    import this process is spared), and still before any video is touched."""
    if not is_weights_tag(settings.clip_pretrained):
        check_weights(settings.clip_model, settings.clip_pretrained)


def raise_model_error(result: dg.ExecuteInProcessResult) -> None:
    """A run that could not open its CLIP model stops the command with the model's message."""
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            if error is not None and error.cls_name == "ClipLoadError":
                raise ClipLoadError(error.message.split(":", 1)[-1].strip())


def delete_videos(video_ids: list[str], settings: Settings) -> list[str]:
    """Delete each video from every store and remove its partition; the ids not found."""
    prepare_catalog(settings)
    stores = open_stores(settings)
    instance = dagster_instance(settings)
    missing = []
    for video_id in video_ids:
        try:
            delete_video(video_id, stores)
        except UnknownVideoError:
            missing.append(video_id)
            continue
        if instance.has_dynamic_partition(videos.name, video_id):
            instance.delete_dynamic_partition(videos.name, video_id)
    return missing


@dataclass(frozen=True)
class ReembedReport:
    model_id: str
    videos: int
    failed: int
    missing: int
    active: bool

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.missing == 0

    def summary(self) -> str:
        state = "search now serves it" if self.active else "search still serves the previous model"
        return (
            f"{self.model_id}: {self.videos - self.failed} of {self.videos} indexed videos "
            f"embedded, {self.missing} missing; {state}"
        )


def reembed(settings: Settings) -> ReembedReport:
    """Run `reembed_videos` on every indexed video with the configured model, in batches. Search
    switches to the model once its table holds them all."""
    from heimdex_pipeline.definitions import build_definitions

    precheck_weights(settings)
    prepare_catalog(settings)
    stores = open_stores(settings)
    instance = dagster_instance(settings)
    reap_lost_runs(instance, stores)
    job = build_definitions(settings).resolve_job_def(REEMBED_JOB)
    with stores.catalog.session() as session:
        targets = list(session.scalars(select(Video.id).where(Video.state == VideoState.INDEXED)))
    failed = 0
    for batch in batches(instance, targets, settings.run_batch_size):
        result = job.execute_in_process(
            instance=instance,
            tags=run_tags(batch),
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
        raise_model_error(result)
        indexed = _materialized(instance, result.run_id, "search_index")
        failed += len(set(batch) - indexed)
    with stores.catalog.session() as session:
        model = session.scalars(
            select(SearchModel)
            .where(
                SearchModel.model == settings.clip_model,
                SearchModel.pretrained == settings.clip_pretrained,
            )
            .order_by(SearchModel.created_at.desc())
        ).first()
        model_id = (
            model.model_id if model else f"{settings.clip_model} / {settings.clip_pretrained}"
        )
        missing = missing_from_model(session, model.model_id) if model else len(targets)
        serving = active_model(session)
    return ReembedReport(
        model_id=model_id,
        videos=len(targets),
        failed=failed,
        missing=missing,
        active=serving is not None and serving.model_id == model_id,
    )
