"""What a command sees of its own runs while they go: each video as it reaches `indexed` or
`failed` (from the catalog), and the running stage of the batch with its videos done, the
frames decoded so far, the time elapsed and an estimate of what is left (from the run's event
log, read incrementally with a cursor)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster import DagsterEventType

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import videos_by_id
from heimdex_pipeline.stores import Stores

DONE = (VideoState.INDEXED, VideoState.FAILED)
POLL_S = 0.5


@dataclass(frozen=True)
class BatchProgress:
    """Where a command's indexing stands."""

    stage: str | None  # the stage running now (None before the first starts)
    stage_done: int  # videos of this batch the stage has finished
    batch_size: int
    videos_done: int  # videos indexed or failed, of every batch so far
    total: int
    frames_decoded: int
    elapsed_s: float
    left_s: float | None  # None until there is something to estimate from

    def line(self) -> str:
        """One status line: `scenes 3/18 · 7/40 videos done · 2,345 frames · 12 s, ~30 s left`."""
        stage = f"{self.stage} {self.stage_done}/{self.batch_size}" if self.stage else "starting"
        left = f", ~{self.left_s:.0f} s left" if self.left_s is not None else ""
        return (
            f"{stage} · {self.videos_done}/{self.total} videos done · "
            f"{self.frames_decoded:,} frames decoded · {self.elapsed_s:.0f} s{left}"
        )


class IndexWatcher:
    """Watches the runs of one `heimdex index`, a batch at a time, from a thread of its own."""

    def __init__(
        self,
        stores: Stores,
        instance: dg.DagsterInstance,
        stages: Sequence[str],
        total: int,
        on_video: Callable[[str], None],
        on_progress: Callable[[BatchProgress], None] | None = None,
    ):
        self._stores, self._instance, self._stages = stores, instance, list(stages)
        self._total, self._on_video, self._on_progress = total, on_video, on_progress
        self._started = time.perf_counter()
        self._videos_done = 0
        self._batches_done = 0
        self._frames = 0
        self._stop = threading.Event()
        self._pending: set[str] = set()
        self._batch: list[str] = []
        self._tags: Mapping[str, str] = {}
        self._run_id: str | None = None
        self._cursor: str | None = None
        self._stage: str | None = None
        self._stage_done: set[str] = set()

    def watch(self, batch: list[str], tags: Mapping[str, str]) -> threading.Thread:
        """Start watching the run about to be launched over `batch` with these tags."""
        self._pending, self._batch, self._tags = set(batch), list(batch), dict(tags)
        self._run_id = self._cursor = self._stage = None
        self._stage_done = set()
        self._stop.clear()
        thread = threading.Thread(target=self._loop, name="index-progress", daemon=True)
        thread.start()
        return thread

    def finish(self, thread: threading.Thread) -> None:
        """The batch's run ended: report what is left of it (unfinished videos too)."""
        self._stop.set()
        thread.join()
        self._poll()
        for video_id in sorted(self._pending):  # the run ended without finishing them
            self._video_done(video_id)
        self._pending.clear()
        self._batches_done += 1

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self._poll()

    def _poll(self) -> None:
        with self._stores.catalog.session() as session:
            rows = videos_by_id(session, self._pending)
        for video_id, row in rows.items():
            if row.state in DONE:
                self._video_done(video_id)
        passed = self._read_run_events()
        if self._on_progress is not None:
            for state in passed:  # stages that began and gave way between two polls
                self._on_progress(state)
            self._on_progress(self.progress())

    def _video_done(self, video_id: str) -> None:
        self._pending.discard(video_id)
        self._videos_done += 1
        self._on_video(video_id)

    def _read_run_events(self) -> list[BatchProgress]:
        """Take in the run's new events; returns how the batch stood as each stage that began
        since the last read gave way to the next, so that no stage goes unreported."""
        if self._run_id is None:
            runs = self._instance.get_run_ids(dg.RunsFilter(tags=dict(self._tags)), limit=1)
            if not runs:
                return []
            self._run_id = runs[0]
        connection = self._instance.get_records_for_run(
            self._run_id,
            cursor=self._cursor,
            of_type={DagsterEventType.STEP_START, DagsterEventType.ASSET_MATERIALIZATION},
        )
        self._cursor = connection.cursor
        passed: list[BatchProgress] = []
        began_here = False  # a stage's start is in this read
        for record in connection.records:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            if event.event_type is DagsterEventType.STEP_START and event.step_key:
                if began_here:
                    passed.append(self.progress())
                self._stage, self._stage_done = event.step_key.split(".")[-1], set()
                began_here = True
            elif event.partition is not None:
                self._stage_done.add(event.partition)
                metadata = event.step_materialization_data.materialization.metadata
                if "frames_decoded" in metadata:
                    self._frames += int(metadata["frames_decoded"].value)
        return passed

    def progress(self) -> BatchProgress:
        elapsed = time.perf_counter() - self._started
        per_batch = max(1, len(self._stages))
        batches = max(1, -(-self._total // max(1, len(self._batch) or 1)))
        position = self._stages.index(self._stage) if self._stage in self._stages else 0
        within = len(self._stage_done) / max(1, len(self._batch))
        fraction = (self._batches_done * per_batch + position + within) / (batches * per_batch)
        left = elapsed * (1 - fraction) / fraction if fraction > 0.02 else None
        return BatchProgress(
            stage=self._stage,
            stage_done=len(self._stage_done),
            batch_size=len(self._batch),
            videos_done=self._videos_done,
            total=self._total,
            frames_decoded=self._frames,
            elapsed_s=elapsed,
            left_s=left,
        )
