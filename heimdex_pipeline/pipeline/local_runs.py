"""The jobs a command runs in its own process: `heimdex index` (register local files, then run
`index_video` on them), `heimdex reembed` and `heimdex delete`.

It is the same job the inbox sensor and backfills launch, run in this process in batches of
HEIMDEX_RUN_BATCH_SIZE videos; the runs land in the Dagster instance at DAGSTER_HOME, so they
show in the UI afterwards under `index_video`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg
from dagster import DagsterEventType

from heimdex_pipeline.catalog.database import Catalog
from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.users import check_owner
from heimdex_pipeline.catalog.video_ids import video_id_for
from heimdex_pipeline.catalog.videos import (
    UnknownVideoError,
    active_model,
    indexed_video_ids,
    missing_from_model,
    newest_model_for,
    register_video,
    scenes_of,
    videos_by_id,
)
from heimdex_pipeline.clip.model import ClipLoadError, check_weights, is_weights_tag
from heimdex_pipeline.library.lifecycle import delete_video
from heimdex_pipeline.library.sources import expand_inputs, source_uri_of
from heimdex_pipeline.pipeline.instance import dagster_instance, reap_lost_runs
from heimdex_pipeline.pipeline.partitions import videos
from heimdex_pipeline.pipeline.progress import DONE, BatchProgress, IndexWatcher
from heimdex_pipeline.pipeline.runs import (
    ensure_partitions,
    local_run_tags,
    materialized_in_run,
    partition_batches,
)
from heimdex_pipeline.pipeline.sensors.failed_runs import mark_unfinished_videos_failed
from heimdex_pipeline.pipeline.stages import ASSET_NAMES
from heimdex_pipeline.pipeline.tags import INDEX_JOB, PEOPLE_JOB, REEMBED_JOB
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores import Stores, check_reachable, open_stores

# Our own progress lines say what happened; the run logs stay in the instance for the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


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


def prepare_catalog(settings: Settings) -> None:
    """The catalog at the code's schema (an embedded one migrated, a server's checked)."""
    Catalog(settings.database_url).ready()


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
    on_progress: Callable[[BatchProgress], None] | None = None,
    owner: str | None = None,
) -> list[IndexOutcome]:
    """Index every input into `owner`'s library (the default owner's when None), batched into
    runs of the `index_video` job, going on past bad ones. Raises ClipLoadError before touching
    anything if the model cannot be loaded, UserError for an owner who is no user, and
    OwnedByAnotherError for an input already in another library."""
    from heimdex_pipeline.pipeline.definitions import build_definitions

    precheck_weights(settings)
    inputs = expand_inputs(paths)
    prepare_catalog(settings)
    stores = open_stores(settings)
    check_reachable(stores)  # an unreachable store is one line, with nothing registered
    instance = dagster_instance(settings)
    reap_lost_runs(instance, stores)
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(INDEX_JOB)
    await_weights_verdict(settings)  # a weights tag that cannot load: nothing registered

    by_id: dict[str, Path] = {}
    owner = owner or settings.default_owner
    with stores.catalog.session() as session:
        check_owner(session, owner, settings.default_owner)
        for path in inputs:  # all or none: a conflict registers nothing
            uri = source_uri_of(path)
            video_id = video_id_for(uri)
            video = register_video(session, video_id, uri, path.name, owner=owner)
            video.state, video.error_text = VideoState.UPLOADING, None  # queued again
            by_id[video_id] = path
    ensure_partitions(instance, by_id)

    outcomes: dict[str, IndexOutcome] = {}
    figures: dict[str, dict[str, float]] = {}
    started = time.perf_counter()

    def report(video_id: str) -> None:
        outcomes[video_id] = _outcome(stores, video_id, by_id[video_id], figures, started)
        if on_done is not None:
            on_done(len(outcomes), len(by_id), outcomes[video_id])

    watcher = IndexWatcher(stores, instance, ASSET_NAMES, len(by_id), report, on_progress)
    for batch in partition_batches(instance, list(by_id), settings.run_batch_size):
        tags = local_run_tags(batch)
        thread = watcher.watch(batch, tags)
        result = job.execute_in_process(
            instance=instance, tags=tags, run_config=QUIET_RUN_CONFIG, raise_on_error=False
        )
        figures.update(_per_video_figures(instance, result.run_id))
        if not result.success:  # what a step could not mark itself (a crash, a bad resource)
            mark_unfinished_videos_failed(
                instance, stores, result.dagster_run, "failed", "the run failed"
            )
        watcher.finish(thread)
        raise_model_error(result)
    if settings.faces:  # the new faces into people, recorded as the `people` asset's run
        people = definitions.resolve_job_def(PEOPLE_JOB)
        people.execute_in_process(instance=instance, run_config=QUIET_RUN_CONFIG)
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
    A weights tag is checked by the command's CLIP worker (it needs open_clip's registry, whose
    import this process is spared), and still before any video is registered
    (`await_weights_verdict`)."""
    if not is_weights_tag(settings.clip_pretrained):
        check_weights(settings.clip_model, settings.clip_pretrained)
    from heimdex_pipeline.speech.model import resolve_asr_model

    resolve_asr_model(settings.asr_model)  # AsrLoadError naming HEIMDEX_ASR_MODEL


def await_weights_verdict(settings: Settings) -> None:
    """ClipLoadError, naming the settings, when a weights tag cannot be had: the verdict of the
    CLIP worker the command started (asked last, so its open_clip import overlapped the work
    before), or this process's own check when there is no such worker."""
    from heimdex_pipeline.clip.worker import shared

    if not is_weights_tag(settings.clip_pretrained):
        return  # a file or folder: `precheck_weights` checked it already
    worker = shared(settings.clip_model, settings.clip_pretrained)
    if worker is not None:
        worker.ready()
    else:
        check_weights(settings.clip_model, settings.clip_pretrained)


def raise_model_error(result: dg.ExecuteInProcessResult) -> None:
    """A run that could not open its CLIP model stops the command with the model's message."""
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            if error is not None and error.cls_name == "ClipLoadError":
                raise ClipLoadError(error.message.split(":", 1)[-1].strip())
            if error is not None and error.cls_name == "AsrLoadError":
                from heimdex_pipeline.speech.model import AsrLoadError

                raise AsrLoadError(error.message.split(":", 1)[-1].strip())


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
    from heimdex_pipeline.pipeline.definitions import build_definitions

    precheck_weights(settings)
    prepare_catalog(settings)
    stores = open_stores(settings)
    instance = dagster_instance(settings)
    reap_lost_runs(instance, stores)
    job = build_definitions(settings).resolve_job_def(REEMBED_JOB)
    await_weights_verdict(settings)
    with stores.catalog.session() as session:
        targets = indexed_video_ids(session)
    ensure_partitions(instance, targets)  # a retired video gets its partition back
    failed = 0
    for batch in partition_batches(instance, targets, settings.run_batch_size):
        result = job.execute_in_process(
            instance=instance,
            tags=local_run_tags(batch),
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
        raise_model_error(result)
        indexed = materialized_in_run(instance, result.run_id, dg.AssetKey("search_index"))
        failed += len(set(batch) - indexed)
    with stores.catalog.session() as session:
        model = newest_model_for(session, settings.clip_model, settings.clip_pretrained)
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
