"""The one decode pass: shot detection and the frames thumbnails and embeddings need."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2

from heimdex_pipeline.media.detect import (
    DetectorSettings,
    SceneSpan,
    ShotDetector,
    analysis_planes,
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


@dataclass
class _Held:
    """A frame the sampler picked, kept as the decoder gave it until we know it is needed."""

    sample: FrameSample  # its jpeg is empty until encoded
    frame: av.VideoFrame | None

    @property
    def time_s(self) -> float:
        return self.sample.time_s

    def encoded(self, size: tuple[int, int], rotation: int, quality: int) -> FrameSample:
        if self.frame is not None:
            jpeg = frame_to_jpeg(self.frame, size, rotation, quality)
            self.sample, self.frame = replace(self.sample, jpeg=jpeg), None
        return self.sample


def analyse_video(
    path: str | Path,
    probe: VideoProbe,
    detector: DetectorSettings,
    sampling: SampleSettings,
    max_scene_s: float,
) -> VideoAnalysis:
    """Decode every frame once: detect cuts on small frames, keep a few larger ones per shot.

    Picked frames stay undecoded-to-RGB until their shot ends; then only those a thumbnail or
    an embedding will use are scaled and encoded (most of the cost of keeping frames).
    """
    path = str(path)
    shots = ShotDetector(detector, probe.fps)
    sampler: FrameSampler[_Held] = FrameSampler(
        sampling, max_interval_s=max(sampling.base_interval_s, max_scene_s / 8)
    )
    keep_size = sample_size(probe.width, probe.height, probe.display_aspect, sampling)
    options = (keep_size, probe.rotation, sampling.jpeg_quality)
    kept: list[FrameSample] = []

    def close_shot(held: list[_Held], start_s: float, end_s: float) -> None:
        spans = [
            SceneSpan(i, a, b) for i, (a, b) in enumerate(shot_parts(start_s, end_s, max_scene_s))
        ]
        by_sample = {id(h.sample): h for h in held}
        for sample in needed_samples([h.sample for h in held], spans):
            kept.append(by_sample[id(sample)].encoded(*options))

    decoded = 0
    time_s = shot_start_s = 0.0
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
                    close_shot(sampler.cut(cut), shot_start_s, cut)
                    shot_start_s = cut
                if sampler.wants(time_s):
                    luma = planes[: planes.shape[0] * 2 // 3]
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
                            held.encoded(*options)
    except av.FFmpegError as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidVideoError(path, f"decoding failed near {time_s:.2f} s ({reason})") from None
    if decoded == 0:
        raise InvalidVideoError(path, "no frame decoded")
    close_shot(sampler.finish(), shot_start_s, max(probe.duration_s, time_s, shot_start_s + 1e-3))
    return VideoAnalysis(
        cuts_s=sorted(set(shots.cuts_s)),
        samples=sorted(kept, key=lambda s: s.time_s),
        frames_decoded=decoded,
    )
