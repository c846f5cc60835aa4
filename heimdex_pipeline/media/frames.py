"""Frames kept from the one decode pass: a few per shot, upright and in display aspect."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import av
from PIL import Image

T = TypeVar("T", bound="Timed")

_TRANSPOSE = {
    90: Image.Transpose.ROTATE_270,  # PIL rotates counter-clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class FrameSample:
    """One kept frame: its time, the image as JPEG, and how usable it looks as a thumbnail."""

    time_s: float
    jpeg: bytes
    luma: float  # mean luma 0-255 on the analysis frame
    contrast: float  # luma standard deviation
    sharpness: float  # variance of the Laplacian of luma

    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")

    @property
    def looks_blank(self) -> bool:
        """Black, white or flat frames (fades, title gaps) make poor thumbnails."""
        return self.luma < 24 or self.luma > 240 or self.contrast < 10


@dataclass(frozen=True)
class SampleSettings:
    """How densely to keep frames: dense in short shots, bounded in long ones."""

    base_interval_s: float = 0.5
    max_per_shot: int = 6
    short_side: int = 224  # the embedder's input
    long_side: int = 480  # the thumbnail's long side
    jpeg_quality: int = 90


def sample_size(
    width: int, height: int, display_aspect: float, settings: SampleSettings
) -> tuple[int, int]:
    """Decoder output size (before rotation) in display aspect, big enough for both consumers."""
    display_w = height * display_aspect
    short, long_ = min(display_w, height), max(display_w, height)
    scale = max(settings.short_side / short, settings.long_side / long_)
    return max(2, round(display_w * scale)), max(2, round(height * scale))


def upright(image: Image.Image, rotation: int) -> Image.Image:
    """Apply a clockwise rotation of 0, 90, 180 or 270 degrees."""
    transpose = _TRANSPOSE.get(rotation % 360)
    return image.transpose(transpose) if transpose is not None else image


def frame_to_jpeg(
    frame: av.VideoFrame, size: tuple[int, int], rotation: int, quality: int
) -> bytes:
    """Scale in the decoder's converter (area averaging: sharp and cheap), turn upright, JPEG."""
    image = upright(frame.to_image(width=size[0], height=size[1], interpolation="AREA"), rotation)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class Timed(Protocol):
    time_s: float


@dataclass
class FrameSampler(Generic[T]):
    """Picks frames at an interval that starts fine and doubles as a shot grows.

    A shot holds at most `max_per_shot` frames until the interval reaches `max_interval_s`
    (`saturated`), so a long shot split into scenes still has frames in each.
    """

    settings: SampleSettings
    max_interval_s: float
    current: list[T] = field(default_factory=list)
    _interval: float = 0.0
    _last_s: float = -math.inf

    def __post_init__(self) -> None:
        self._interval = self.settings.base_interval_s

    @property
    def saturated(self) -> bool:
        """True once the interval stops doubling: no frame of the shot will be dropped any more."""
        return self._interval >= self.max_interval_s

    def wants(self, time_s: float) -> bool:
        return time_s - self._last_s >= self._interval - 1e-6

    def add(self, item: T) -> None:
        self.current.append(item)
        self._last_s = item.time_s
        if len(self.current) > self.settings.max_per_shot and not self.saturated:
            self.current = self.current[::2]
            self._interval *= 2

    def cut(self, time_s: float) -> list[T]:
        """A shot starts at time_s: return the last shot's frames, sample the new one afresh."""
        closed = [item for item in self.current if item.time_s < time_s]
        self.current = [item for item in self.current if item.time_s >= time_s]
        self._interval = self.settings.base_interval_s
        if not self.current:
            self._last_s = -math.inf
        return closed

    def finish(self) -> list[T]:
        """The last shot's frames."""
        closed, self.current = self.current, []
        return closed
