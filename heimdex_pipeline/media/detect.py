"""Shot boundaries with PySceneDetect's ContentDetector, and scenes that tile a video."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Protocol

import av
import cv2
import numpy as np
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode, Timecode

from heimdex_pipeline.media.detector_names import DEFAULT_DETECTOR, DETECTORS

# Frame times are handed to PySceneDetect in microseconds, which keeps VFR timing exact enough.
_MICROSECONDS = Fraction(1, 1_000_000)


@dataclass(frozen=True)
class DetectorSettings:
    """Which shot detector, and its parameters.

    `content`: PySceneDetect's ContentDetector at threshold 30 on frames about 128 px wide (chosen
    on ../shared/videos). `fused`: content, histogram and hash scores with checks for flashes,
    fades and gradual transitions, no scene under 15 frames (`fused.py`, thresholds chosen on the
    tuning halves of the generated corpus and of the real footage in `benchmarks/`).
    `transnetv2`: the TransNetV2 network on 48x27 frames (`transnet.py`; slow on CPU). All read
    the frames of the one decode pass. See README, "Shot detection".
    """

    detector: str = DEFAULT_DETECTOR
    threshold: float = 30.0  # content
    min_scene_len_frames: int = 15  # content
    analysis_width: int = 128

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown shot detector {self.detector!r}: one of {DETECTORS}")

    def as_dict(self) -> dict[str, object]:
        if self.detector == "fused":
            from heimdex_pipeline.media.fused import FusedThresholds

            return {"detector": "fused", "analysis_width": self.analysis_width,
                    **FusedThresholds().as_dict()}  # fmt: skip
        if self.detector == "transnetv2":
            from heimdex_pipeline.media.transnet import TRANSNET_THRESHOLD

            return {"detector": "transnetv2", "threshold": TRANSNET_THRESHOLD}
        return asdict(self)


@dataclass(frozen=True)
class SceneSpan:
    """One scene: its position in the video and its time range in seconds from the first frame."""

    index: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class ContentShots:
    """Feeds frames, in order, to PySceneDetect and collects the cut times in seconds."""

    def __init__(self, settings: DetectorSettings, fps: float):
        self.settings = settings
        self._fps = Fraction(fps).limit_denominator(100_000) if fps > 0 else Fraction(25)
        self._detector = ContentDetector(
            threshold=settings.threshold, min_scene_len=settings.min_scene_len_frames
        )
        self.cuts_s: list[float] = []

    def push(self, time_s: float, yuv420p: np.ndarray) -> list[float]:
        """Process one analysis frame (a planar yuv420p array); return cuts found so far by it."""
        # Converting from YUV here, not in swscale, keeps near-black frames grey: swscale's
        # dithered RGB gives dark pixels random hue and saturation, which reads as a cut in fades.
        bgr = cv2.cvtColor(yuv420p, cv2.COLOR_YUV2BGR_I420)
        timecode = FrameTimecode(
            Timecode(pts=round(time_s * 1_000_000), time_base=_MICROSECONDS), fps=self._fps
        )
        found = [cut.seconds for cut in self._detector.process_frame(timecode, bgr)]
        self.cuts_s.extend(found)
        return found

    def finish(self) -> list[float]:
        return []

    def decided_s(self) -> float:
        return math.inf  # no look-ahead: every frame pushed is decided

    def may_start_shot(self) -> bool:
        return True


class Shots(Protocol):
    """A shot detector fed the decode pass's analysis frames in order."""

    cuts_s: list[float]

    def push(self, time_s: float, yuv420p: np.ndarray) -> list[float]: ...

    def finish(self) -> list[float]: ...

    def decided_s(self) -> float:
        """No cut will come at or before this time any more."""
        ...

    def may_start_shot(self) -> bool:
        """The frame just pushed could be the first of a shot after a hard cut."""
        ...


def shot_detector(settings: DetectorSettings, fps: float) -> Shots:
    """The detector the settings name, ready for frames."""
    if settings.detector == "fused":
        from heimdex_pipeline.media.fused import FusedDetector

        return FusedDetector()
    if settings.detector == "transnetv2":
        from heimdex_pipeline.media.transnet import TransNetShots

        return TransNetShots()
    return ContentShots(settings, fps)


_PLANAR_YUV = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}


def _plane(plane: av.VideoPlane, step_x: int, step_y: int) -> np.ndarray:
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[::step_y, : plane.width : step_x]


def analysis_planes(frame: av.VideoFrame, analysis_width: int) -> np.ndarray:
    """A small planar yuv420p copy of the frame, about analysis_width wide.

    Takes every n-th pixel of the decoder's own planes (any 8-bit planar YUV layout): no colour
    conversion and no scaling filter on the full frame, which would cost more than decoding it.
    """
    if frame.format.name not in _PLANAR_YUV:
        frame = frame.reformat(format="yuv420p")
    step = max(1, frame.width // analysis_width)
    luma, *chroma = frame.planes
    y = _plane(luma, step, step)
    # Chroma at half the analysis size in both directions, whatever the source subsampling.
    u, v = (
        _plane(p, 2 * step * p.width // luma.width, 2 * step * p.height // luma.height)
        for p in chroma
    )
    height = min(y.shape[0] // 2 * 2, u.shape[0] * 2)
    width = min(y.shape[1] // 2 * 2, u.shape[1] * 2)
    out = np.empty((height * 3 // 2, width), np.uint8)
    out[:height] = y[:height, :width]
    chroma_out = out[height:].reshape(2, height // 2, width // 2)  # a view: all of u, then all of v
    chroma_out[0] = u[: height // 2, : width // 2]
    chroma_out[1] = v[: height // 2, : width // 2]
    return out


def shot_parts(start_s: float, end_s: float, max_scene_s: float) -> list[tuple[float, float]]:
    """A shot as scenes: itself, or split evenly when it is longer than max_scene_s."""
    parts = max(1, math.ceil((end_s - start_s) / max_scene_s - 1e-9))
    step = (end_s - start_s) / parts
    return [
        (start_s + step * part, end_s if part == parts - 1 else start_s + step * (part + 1))
        for part in range(parts)
    ]


def tile_scenes(cuts_s: list[float], duration_s: float, max_scene_s: float) -> list[SceneSpan]:
    """Scenes that tile [0, duration]: one per shot, shots longer than max_scene_s split evenly."""
    if duration_s <= 0:
        raise ValueError("duration_s must be positive")
    bounds = [0.0, *sorted(c for c in set(cuts_s) if 0.0 < c < duration_s), duration_s]
    spans: list[SceneSpan] = []
    for start, end in itertools.pairwise(bounds):
        for part_start, part_end in shot_parts(start, end, max_scene_s):
            spans.append(SceneSpan(len(spans), part_start, part_end))
    return spans
