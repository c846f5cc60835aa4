"""Probing real clips, and refusing what is not a decodable video."""

from pathlib import Path

import pytest

from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.media.probe import probe
from heimdex_pipeline_tests.media_files import make_bad_inputs


def test_every_sample_clip_probes_with_a_duration_and_frames(sample_videos: Path, cuts: dict):
    for name in cuts:
        facts = probe(sample_videos / name)
        assert facts.duration_s > 0.5 and facts.frame_count > 10, name
        assert facts.frames_decoded <= 3, name


def test_rotation_and_display_aspect_are_read(sample_videos: Path):
    rotated = probe(sample_videos / "issue-134-rotate.mp4")
    assert rotated.rotation in (90, 270) and rotated.display_size == (544, 1280)
    anamorphic = probe(sample_videos / "issue-195-aspect-ratio.mp4")
    assert (anamorphic.width, anamorphic.height) == (704, 576)
    assert anamorphic.display_aspect == pytest.approx(16 / 9, rel=1e-3)


def test_a_late_starting_stream_is_normalised_to_zero(sample_videos: Path):
    facts = probe(sample_videos / "delayed_start.mp4")
    assert facts.start_s == pytest.approx(1.075, abs=1e-3)
    assert facts.duration_s == pytest.approx(0.96, abs=0.05)


def test_a_container_without_a_duration_gets_one_from_its_frames(sample_videos: Path):
    facts = probe(sample_videos / "handwave-vfr.webm")
    assert facts.duration_s == pytest.approx(3.1, abs=0.2) and facts.frame_count == 94


def test_a_broken_audio_track_does_not_reject_the_video(sample_videos: Path):
    facts = probe(sample_videos / "video_with_failing_audio.mp4")
    assert facts.has_audio and facts.frame_count == 280


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "empty"),
        ("random_bytes", "not a readable video"),
        ("text", "not a readable video"),
        ("image", "still image"),
        ("truncated", "truncated"),
        ("audio_only", "no video stream"),
        ("one_frame", "only 1 video frame"),
    ],
)
def test_bad_input_raises_a_typed_error_naming_the_file_and_reason(
    kind: str, reason: str, sample_videos: Path, tmp_path: Path
):
    bad = make_bad_inputs(tmp_path, sample_videos / "big_buck_bunny_0_30.webm")[kind]
    with pytest.raises(InvalidVideoError) as raised:
        probe(bad)
    assert raised.value.path == str(bad)
    assert reason in raised.value.reason
    assert str(bad) in str(raised.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(InvalidVideoError, match="file not found"):
        probe(tmp_path / "nope.mp4")
