"""The one decode pass: shot detection and the frames thumbnails and embeddings need."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np

from heimdex_pipeline.media.detect import (
    DetectorSettings,
    SceneSpan,
    Shots,
    analysis_planes,
    shot_detector,
    shot_parts,
)
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.media.frames import (
    FrameSample,
    FrameSampler,
    SampleSettings,
    frame_to_jpeg,
    sample_size,
)
from heimdex_pipeline.media.probe import VideoProbe
from heimdex_pipeline.media.thumbnail import needed_samples


@dataclass(frozen=True)
class VideoAnalysis:
    """What one pass over the frames found."""

    cuts_s: list[float]
    samples: list[FrameSample]
    frames_decoded: int


class _JpegWorker:
    """Scales and encodes kept frames on a thread of its own while the loop decodes on (the
    scaling and the JPEG encoder let go of the GIL). At most MAX_PENDING frames wait for it, so
    a slow encoder holds back the decoder rather than letting frames pile up."""

    MAX_PENDING = 8

    def __init__(self, size: tuple[int, int], rotation: int, quality: int):
        self._options = (size, rotation, quality)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heimdex-jpeg")
        self._pending: deque[Future[bytes]] = deque()

    def submit(self, frame: av.VideoFrame) -> Future[bytes]:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.MAX_PENDING):
            self._pending.popleft().result()  # an encoding error surfaces here, or at the end
        future = self._pool.submit(frame_to_jpeg, frame, *self._options)
        self._pending.append(future)
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Held:
    """A frame the sampler picked, kept as the decoder gave it until we know it is needed."""

    sample: FrameSample  # its jpeg is empty until encoded
    frame: av.VideoFrame | None
    jpeg: Future[bytes] | None = None

    @property
    def time_s(self) -> float:
        return self.sample.time_s

    def encode(self, worker: _JpegWorker) -> _Held:
        """Have the frame encoded (once) and let go of it."""
        if self.frame is not None:
            self.jpeg, self.frame = worker.submit(self.frame), None
        return self

    def encoded(self) -> FrameSample:
        """The sample with its JPEG (waits for the encoding)."""
        if self.jpeg is not None:
            self.sample, self.jpeg = replace(self.sample, jpeg=self.jpeg.result()), None
        return self.sample


@dataclass
class _Tick:
    time_s: float


class _MayWant:
    """Which frames the sampler may take while cuts are pending. The sampler's choice depends
    on where the current shot started: one cadence (a sampler over times only) follows each
    start still possible (the last cut, and every later frame that could begin a hard cut), and
    a frame is kept waiting when any of them would take it. Exact for hard cuts; after a gradual
    transition's boundary, the first frame kept may come a little later."""

    def __init__(self, make: Callable[[], FrameSampler[_Tick]]):
        self._make = make
        self._last_cut = -math.inf
        self._by_start: dict[float, FrameSampler[_Tick]] = {self._last_cut: make()}

    def wants(self, time_s: float, may_start_shot: bool) -> bool:
        if may_start_shot:
            self._by_start.setdefault(time_s, self._make())
        wanted = False
        for cadence in self._by_start.values():
            if cadence.wants(time_s):
                cadence.add(_Tick(time_s))
                wanted = True
        return wanted

    def cut(self, time_s: float) -> None:
        self._last_cut = time_s
        self._by_start.setdefault(time_s, self._make())

    def settle(self, decided_s: float) -> None:
        """Forget starts ruled out: before the last cut, or decided and not a cut."""
        self._by_start = {
            start: cadence
            for start, cadence in self._by_start.items()
            if start == self._last_cut or start > decided_s
        }


def analyse_video(
    path: str | Path,
    probe: VideoProbe,
    detector: DetectorSettings,
    sampling: SampleSettings,
    max_scene_s: float,
    shots: Shots | None = None,
) -> VideoAnalysis:
    """Decode every frame once: detect cuts on small frames, keep a few larger ones per shot.

    `shots` is the detector to feed (by default the one `detector` names). Picked frames stay
    undecoded-to-RGB until their shot ends; then only those a thumbnail or
    an embedding will use are scaled and encoded (most of the cost of keeping frames), on a
    thread beside the decode loop.
    """
    path = str(path)
    shots = shots or shot_detector(detector, probe.fps)
    keep_size = sample_size(probe.width, probe.height, probe.display_aspect, sampling)
    worker = _JpegWorker(keep_size, probe.rotation, sampling.jpeg_quality)
    try:
        return _decode_pass(path, probe, detector, sampling, max_scene_s, shots, worker)
    finally:
        worker.close()


def _decode_pass(
    path: str,
    probe: VideoProbe,
    detector: DetectorSettings,
    sampling: SampleSettings,
    max_scene_s: float,
    shots: Shots,
    worker: _JpegWorker,
) -> VideoAnalysis:
    max_interval_s = max(sampling.base_interval_s, max_scene_s / 8)
    sampler: FrameSampler[_Held] = FrameSampler(sampling, max_interval_s=max_interval_s)
    kept: list[_Held] = []

    def close_shot(held: list[_Held], start_s: float, end_s: float) -> None:
        spans = [
            SceneSpan(i, a, b) for i, (a, b) in enumerate(shot_parts(start_s, end_s, max_scene_s))
        ]
        by_sample = {id(h.sample): h for h in held}
        for sample in needed_samples([h.sample for h in held], spans):
            kept.append(by_sample[id(sample)].encode(worker))

    # A detector that looks ahead decides a frame some frames after it was decoded; frames wait
    # here until then, so the sampler sees each shot's frames as if cuts came at once. Only the
    # frames the sampler may take wait (a held frame's buffer cannot be reused by the decoder).
    waiting: deque[tuple[float, av.VideoFrame, np.ndarray]] = deque()
    may_want = _MayWant(lambda: FrameSampler(sampling, max_interval_s=max_interval_s))
    shot_start_s = 0.0

    def offer(time_s: float, frame: av.VideoFrame, luma: np.ndarray) -> None:
        if not sampler.wants(time_s):
            return
        sample = FrameSample(
            time_s=time_s,
            jpeg=b"",
            luma=float(luma.mean()),
            contrast=float(luma.std()),
            sharpness=float(cv2.Laplacian(luma, cv2.CV_32F).var()),
        )
        sampler.add(_Held(sample, frame))
        if sampler.saturated:  # a long shot: hold no more than max_per_shot frames
            for held in sampler.current:
                held.encode(worker)

    def release(upto_s: float) -> None:
        while waiting and waiting[0][0] <= upto_s:
            offer(*waiting.popleft())

    def cut_at(cut: float) -> None:
        nonlocal shot_start_s
        release(cut - 1e-9)  # the old shot's frames, then the cut
        close_shot(sampler.cut(cut), shot_start_s, cut)
        shot_start_s = cut
        may_want.cut(cut)

    decoded = 0
    time_s = 0.0
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            # pts x time base as int / int: the same correctly rounded float as through a
            # Fraction, without building two Fractions a frame
            num, den = stream.time_base.numerator, stream.time_base.denominator
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts is None:
                    continue
                time_s = max(0.0, frame.pts * num / den - probe.start_s)
                planes = analysis_planes(frame, detector.analysis_width)
                for cut in shots.push(time_s, planes):
                    cut_at(cut)
                decided_s = shots.decided_s()
                if decided_s == math.inf or may_want.wants(time_s, shots.may_start_shot()):
                    waiting.append((time_s, frame, planes[: planes.shape[0] * 2 // 3]))
                release(decided_s)
                may_want.settle(decided_s)
    except av.FFmpegError as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidVideoError(path, f"decoding failed near {time_s:.2f} s ({reason})") from None
    if decoded == 0:
        raise InvalidVideoError(path, "no frame decoded")
    for cut in shots.finish():  # a detector that looks ahead decides its last frames now
        cut_at(cut)
    release(math.inf)
    close_shot(sampler.finish(), shot_start_s, max(probe.duration_s, time_s, shot_start_s + 1e-3))
    return VideoAnalysis(
        cuts_s=sorted(set(shots.cuts_s)),
        samples=sorted((held.encoded() for held in kept), key=lambda s: s.time_s),
        frames_decoded=decoded,
    )
