"""The one decode pass: shot detection and the frames thumbnails and embeddings need."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2

from heimdex_pipeline.media.detect import DetectorSettings, ShotDetector, analysis_planes
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.media.frames import (
    FrameSample,
    FrameSampler,
    SampleSettings,
    frame_to_jpeg,
    sample_size,
)
from heimdex_pipeline.media.probe import VideoProbe


@dataclass(frozen=True)
class VideoAnalysis:
    """What one pass over the frames found."""

    cuts_s: list[float]
    samples: list[FrameSample]
    frames_decoded: int


def analyse_video(
    path: str | Path,
    probe: VideoProbe,
    detector: DetectorSettings,
    sampling: SampleSettings,
    max_scene_s: float,
) -> VideoAnalysis:
    """Decode every frame once: detect cuts on small frames, keep a few larger ones per shot."""
    path = str(path)
    shots = ShotDetector(detector, probe.fps)
    sampler = FrameSampler(sampling, max_interval_s=max(sampling.base_interval_s, max_scene_s / 8))
    keep_size = sample_size(probe.width, probe.height, probe.display_aspect, sampling)
    decoded = 0
    time_s = 0.0
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts is None:
                    continue
                time_s = max(0.0, float(frame.pts * stream.time_base) - probe.start_s)
                planes = analysis_planes(frame, detector.analysis_width)
                for cut in shots.push(time_s, planes):
                    sampler.cut(cut)
                if sampler.wants(time_s):
                    luma = planes[: planes.shape[0] * 2 // 3]
                    sampler.add(
                        FrameSample(
                            time_s=time_s,
                            jpeg=frame_to_jpeg(
                                frame, keep_size, probe.rotation, sampling.jpeg_quality
                            ),
                            luma=float(luma.mean()),
                            contrast=float(luma.std()),
                            sharpness=float(cv2.Laplacian(luma, cv2.CV_32F).var()),
                        )
                    )
    except av.FFmpegError as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidVideoError(path, f"decoding failed near {time_s:.2f} s ({reason})") from None
    if decoded == 0:
        raise InvalidVideoError(path, "no frame decoded")
    return VideoAnalysis(
        cuts_s=sorted(set(shots.cuts_s)), samples=sampler.samples(), frames_decoded=decoded
    )
