"""Index local files in-process: register each, add its partition, materialize the chain.

The runs land in the Dagster instance at DAGSTER_HOME, so they show in the UI afterwards.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg

from heimdex_pipeline.assets import ALL_ASSETS
from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import get_video, register_video, scenes_of, set_state
from heimdex_pipeline.checks import ALL_CHECKS
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import build_resources
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.video_ids import is_video_file, source_uri_for, video_id_for

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


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the video files in them (recursively), sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if is_video_file(p)))
        else:
            found.append(path)
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(source_uri_for(path), path)
    return list(unique.values())


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance at DAGSTER_HOME (created under HEIMDEX_HOME when unset)."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    return dg.DagsterInstance.get()


def _frames_decoded(result: dg.ExecuteInProcessResult) -> int:
    total = 0
    for event in result.get_asset_materialization_events():
        value = event.materialization.metadata.get("frames_decoded")
        total += int(value.value) if value is not None else 0
    return total


def _failure_summary(result: dg.ExecuteInProcessResult) -> str:
    failures = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip() if event.step_failure_data and event.step_failure_data.error else 'failed'}"  # noqa: E501
        for event in result.get_step_failure_events()
    ]
    return "; ".join(failures) or "the run did not succeed"


def index_one(
    path: Path, settings: Settings, instance: dg.DagsterInstance, resources: dict
) -> IndexOutcome:
    """Register one file and run its chain; never raises for a bad video."""
    started = time.perf_counter()
    source_uri = source_uri_for(path)
    video_id = video_id_for(source_uri)
    catalog = resources["catalog"]
    with catalog.session() as session:
        register_video(session, video_id, source_uri, path.name)
    instance.add_dynamic_partitions(videos.name, [video_id])
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        partition_key=video_id,
        instance=instance,
        resources=resources,
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
        tags={"heimdex/source": source_uri[:250]},
    )
    with catalog.session() as session:
        video = get_video(session, video_id)
        if not result.success and video.state is not VideoState.FAILED:
            set_state(session, video_id, VideoState.FAILED, _failure_summary(result))
        rows = scenes_of(session, video_id)
        return IndexOutcome(
            video_id=video_id,
            source=str(path),
            state=video.state.value,
            error=video.error_text,
            duration_s=video.duration_s,
            frame_count=video.frame_count,
            frames_decoded=_frames_decoded(result),
            seconds=round(time.perf_counter() - started, 3),
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


def index_paths(
    paths: Iterable[str | Path],
    settings: Settings,
    on_done: Callable[[int, int, IndexOutcome], None] | None = None,
    resources: dict | None = None,
) -> list[IndexOutcome]:
    """Index every input in turn, going on past bad ones."""
    inputs = expand_inputs(paths)
    instance = dagster_instance(settings)
    resources = resources or build_resources(settings)
    outcomes = []
    for number, path in enumerate(inputs, start=1):
        outcome = index_one(path, settings, instance, resources)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(number, len(inputs), outcome)
    return outcomes
