"""The decode pass's kept frames: encoded on a thread beside the loop, as they would be inline."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest

from heimdex_pipeline.media.analyse import analyse_video
from heimdex_pipeline.media.detect import DetectorSettings
from heimdex_pipeline.media.frames import SampleSettings, frame_to_jpeg, sample_size
from heimdex_pipeline.media.fused import FusedDetector
from heimdex_pipeline.media.probe import probe

CLIP = "testvideo.mp4"  # cuts, a dissolve and long shots: frames kept in many shots


def _encoding_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("heimdex-jpeg")]


def test_each_kept_frame_is_the_jpeg_of_its_own_frame(sample_videos: Path):
    path = sample_videos / CLIP
    facts = probe(path)
    settings = SampleSettings()
    analysis = analyse_video(path, facts, DetectorSettings(), settings, 30.0)
    assert len(analysis.samples) >= 10
    size = sample_size(facts.width, facts.height, facts.display_aspect, settings)
    wanted = {round(s.time_s, 6): s.jpeg for s in analysis.samples}
    inline = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            time_s = round(float(frame.pts * stream.time_base) - facts.start_s, 6)
            if time_s in wanted:
                inline[time_s] = frame_to_jpeg(frame, size, facts.rotation, settings.jpeg_quality)
    assert inline.keys() == wanted.keys()
    assert [t for t in wanted if wanted[t] != inline[t]] == []
    assert _encoding_threads() == []


class _FailsMidway(FusedDetector):
    """A detector that breaks after 200 frames, once frames have been kept and sent to encode."""

    def push(self, time_s: float, yuv420p: np.ndarray) -> list[float]:
        if len(self.frames) == 200:
            raise RuntimeError("detector broke")
        return super().push(time_s, yuv420p)


def test_a_pass_that_fails_midway_leaves_no_encoding_thread_behind(sample_videos: Path):
    path = sample_videos / CLIP
    with pytest.raises(RuntimeError, match="detector broke"):
        analyse_video(
            path, probe(path), DetectorSettings(), SampleSettings(), 30.0, shots=_FailsMidway()
        )
    assert _encoding_threads() == []
