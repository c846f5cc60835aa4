"""Probe a video file with PyAV: what it is, how long, how big, which way up."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from heimdex_pipeline.media.errors import InvalidVideoError

# Demuxers that open a still image as a one-frame "video".
_STILL_IMAGE_FORMATS = {"image2", "image2pipe", "gif_pipe"}


@dataclass(frozen=True)
class VideoProbe:
    """The facts about one video file that every later step needs."""

    path: str
    container: str
    codec: str
    duration_s: float
    frame_count: int
    fps: float
    width: int
    height: int
    sample_aspect: float
    display_aspect: float
    rotation: int  # degrees clockwise that turn a decoded frame upright: 0, 90, 180 or 270
    has_audio: bool
    size_bytes: int
    mime_type: str
    start_s: float  # the first frame's timestamp in the file; every time we report starts at 0
    frames_decoded: int

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: sample aspect applied, then rotation."""
        width = round(self.height * self.display_aspect)
        if self.rotation in (90, 270):
            return self.height, width
        return width, self.height


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _reason(error: av.FFmpegError) -> str:
    return str(getattr(error, "strerror", None) or error).rstrip(".")


def clockwise_rotation(frame: av.VideoFrame) -> int:
    # PyAV reports the display matrix angle counter-clockwise, as FFmpeg does.
    return round(-float(getattr(frame, "rotation", 0) or 0)) % 360


def probe(path: str | Path) -> VideoProbe:
    """Read a video's facts; raise InvalidVideoError if it is not a decodable video."""
    path = str(path)
    size = Path(path).stat().st_size if Path(path).exists() else -1
    if size < 0:
        raise InvalidVideoError(path, "file not found")
    if size == 0:
        raise InvalidVideoError(path, "the file is empty")
    try:
        container = av.open(path)
    except av.FFmpegError as error:
        raise InvalidVideoError(
            path, f"not a readable video container, or truncated ({_reason(error)})"
        ) from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise InvalidVideoError(path, f"no video stream (streams: {', '.join(kinds)})")
        if container.format.name in _STILL_IMAGE_FORMATS or container.format.name.endswith("_pipe"):
            raise InvalidVideoError(path, f"a still image ({container.format.name}), not a video")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        first_pts, end_pts, packets = _scan_packets(path, container, stream, size)
        if packets < 2:
            raise InvalidVideoError(path, f"only {packets} video frame(s): not a video")
        container.seek(0)
        frame, frames_decoded = _first_frame(path, container, stream)
        time_base = stream.time_base or Fraction(1, 1)
        start_s = float(first_pts * time_base)
        duration_s = float((end_pts - first_pts) * time_base)
        if duration_s <= 0:
            raise InvalidVideoError(path, "the video stream has no duration")
        declared_s = (container.duration or 0) / av.time_base
        if declared_s > 0 and declared_s - (start_s + duration_s) > max(1.0, 0.02 * declared_s):
            raise InvalidVideoError(
                path,
                f"truncated: the header says {declared_s:.2f} s "
                f"but the frames stop at {start_s + duration_s:.2f} s",
            )
        sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
        sample_aspect = float(sar) if sar and float(sar) > 0 else 1.0
        width, height = frame.width, frame.height
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else packets / duration_s
        mime = mimetypes.guess_type(path)[0] or f"video/{container.format.name.split(',')[0]}"
        return VideoProbe(
            path=path,
            container=container.format.name,
            codec=codec,
            duration_s=duration_s,
            frame_count=packets,
            fps=fps,
            width=width,
            height=height,
            sample_aspect=sample_aspect,
            display_aspect=width * sample_aspect / height,
            rotation=clockwise_rotation(frame),
            has_audio=bool(container.streams.audio),
            size_bytes=size,
            mime_type=mime,
            start_s=start_s,
            frames_decoded=frames_decoded,
        )


def _scan_packets(
    path: str, container: av.container.InputContainer, stream: av.VideoStream, size: int
) -> tuple[int, int, int]:
    """Demux (no decoding) the video packets: first pts, end pts and the packet count."""
    first = end = None
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            if packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > size:
                raise InvalidVideoError(path, "truncated: a frame lies past the end of the file")
            count += 1
            duration = packet.duration or 0
            first = packet.pts if first is None else min(first, packet.pts)
            end = packet.pts + duration if end is None else max(end, packet.pts + duration)
    except av.FFmpegError as error:
        raise InvalidVideoError(path, f"corrupt or truncated stream ({_reason(error)})") from None
    if first is None or end is None:
        return 0, 0, 0
    return first, end, count


def _first_frame(
    path: str, container: av.container.InputContainer, stream: av.VideoStream
) -> tuple[av.VideoFrame, int]:
    """Decode until the first frame comes out; the count of frames decoded on the way."""
    decoded = 0
    try:
        for frame in container.decode(stream):
            decoded += 1
            return frame, decoded
    except av.FFmpegError as error:
        raise InvalidVideoError(
            path, f"the video stream does not decode ({_reason(error)})"
        ) from None
    raise InvalidVideoError(path, "the video stream holds no decodable frame")
