"""What a stage is: a per-video asset that declares what it reads and what it needs, and whose
work runs over a batch of videos, one outcome per video. `graph.py` builds the Dagster
definition from these declarations; each stage's module holds only its work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import dagster as dg

from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.pipeline.checks import Check, checks_of
from heimdex_pipeline.pipeline.resources import (
    AsrResource,
    ClipResource,
    FacesResource,
    PipelineResource,
)
from heimdex_pipeline.stores import Stores

T = TypeVar("T")
# The resources every stage gets: its stores and the pipeline's knobs.
STAGE_RESOURCES = frozenset({"catalog", "objects", "vectors", "pipeline"})


@dataclass(frozen=True)
class StageResult:
    """What a stage made of one video: the metadata of its materialization."""

    metadata: dict[str, object]


Outcome = StageResult | Exception


@dataclass
class StageContext:
    """What a stage's work may use: the stores, the knobs, CLIP, Whisper or the face models
    (if it asked for them), the log."""

    stores: Stores
    pipeline: PipelineResource
    log: dg.DagsterLogManager
    clip: ClipResource | None = None
    asr: AsrResource | None = None
    faces: FacesResource | None = None

    @property
    def sampling(self) -> SampleSettings:
        return self.pipeline.sampling()


StageWork = Callable[[StageContext, list[str]], Iterator[tuple[str, Outcome]]]


@dataclass(frozen=True)
class Stage:
    """One per-video asset: its work over a batch of videos, the stages it reads, the resources
    and pool it needs, and how it shows in Dagster."""

    asset: str
    work: StageWork
    description: str
    group: str
    kinds: frozenset[str]
    reads: tuple[str, ...] = ()  # the stages whose outputs it reads (none: it starts the chain)
    resources: frozenset[str] = STAGE_RESOURCES
    pool: str | None = None
    # False for a stage whose failure must not cost the video what the others made of it (the
    # transcripts: a video without one is still found by its pictures). Its partition fails
    # with the reason; `on_failure(video_id, stores, reason)` may record it where people look.
    fails_video: bool = True
    on_failure: Callable[[str, Stores, str], None] | None = None

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(self.asset)

    @property
    def checks(self) -> list[Check]:
        return checks_of(self.asset)


def one_at_a_time(work: Callable[[StageContext, str], StageResult]) -> StageWork:
    """A stage's batch work from its work on one video; each error stays with its video."""

    def over_batch(context: StageContext, video_ids: list[str]) -> Iterator[tuple[str, Outcome]]:
        for video_id in video_ids:
            try:
                yield video_id, work(context, video_id)
            except Exception as error:
                yield video_id, error

    return over_batch


def prepare_each(
    video_ids: list[str], prepare: Callable[[str], T]
) -> tuple[dict[str, T], list[tuple[str, Exception]]]:
    """`prepare` each video of a batch stage: what worked, by video, and what did not."""
    ready: dict[str, T] = {}
    errors: list[tuple[str, Exception]] = []
    for video_id in video_ids:
        try:
            ready[video_id] = prepare(video_id)
        except Exception as error:  # judged per video by the caller
            errors.append((video_id, error))
    return ready, errors


def check_committed(table: str, stored: dict[str, int], video_id: str, expected: int, what: str):
    """RuntimeError unless the commit left the table holding `expected` of the video's rows."""
    found = stored.get(video_id, 0)
    if found != expected:
        raise RuntimeError(f"{table} holds {found} {what} of the video, expected {expected}")
