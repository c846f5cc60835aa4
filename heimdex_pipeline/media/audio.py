"""A video's audio track as 16 kHz mono samples, the way Whisper takes it; no pictures decoded.

No audio stream and a track that does not decode are told apart, so that the transcript can say
which (`NoAudioError`, `AudioUnreadableError`); neither is a bad video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000
# A track where more than this share of packets fails to decode is unreadable, not noisy.
MAX_BAD_PACKET_SHARE = 0.5


class NoAudioError(Exception):
    """The container has no audio stream."""


class AudioUnreadableError(Exception):
    """The container has an audio stream that cannot be decoded; the reason says how."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AudioTrack:
    samples: np.ndarray  # float32 in [-1, 1], mono, SAMPLE_RATE
    codec: str
    bad_packets: int
    packets: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _said(error: Exception) -> str:
    """FFmpeg's words for an error, without its errno and call name."""
    return str(getattr(error, "strerror", None) or error).lower()


def read_audio(path: str | Path) -> AudioTrack:
    """Decode the first audio stream of `path` to 16 kHz mono float32."""
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise AudioUnreadableError(f"the container does not open ({error})") from None
    with container:
        if not container.streams.audio:
            raise NoAudioError(str(path))
        stream = container.streams.audio[0]
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        packets = bad = 0
        first_error: str | None = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                packets += 1
                try:
                    for frame in packet.decode():
                        for out in resampler.resample(frame):
                            chunks.append(out.to_ndarray().reshape(-1))
                except (av.error.FFmpegError, ValueError) as error:
                    bad += 1
                    first_error = first_error or f"{codec}: {_said(error)}"
        except av.error.FFmpegError as error:  # the demuxer itself gave up
            bad += 1
            first_error = first_error or f"{codec}: {_said(error)}"
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        raise AudioUnreadableError(first_error or f"{codec}: no audio samples decoded")
    if packets and bad / packets > MAX_BAD_PACKET_SHARE:
        raise AudioUnreadableError(f"{bad} of {packets} packets do not decode ({first_error})")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    return AudioTrack(samples=samples, codec=codec, bad_packets=bad, packets=packets)
