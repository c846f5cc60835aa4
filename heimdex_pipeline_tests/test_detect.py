"""Shot detection accuracy on real clips, and scenes that tile the video."""

from pathlib import Path

import pytest

from heimdex_pipeline.media.analyse import analyse_video
from heimdex_pipeline.media.detect import DetectorSettings, tile_scenes
from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.media.probe import probe
from heimdex_pipeline.pipeline.checks import tiling_problems

# Gradual transitions in the sample clips that cuts.json (hard cuts only) does not list, seen
# frame by frame: a boundary found inside one is neither a hit nor a false cut.
UNLISTED_GRADUAL = {"testvideo.mp4": [(17.85, 18.45)]}  # a dissolve: leaves and stone -> grille


def f1_against(found: dict[str, list[float]], cuts: dict) -> tuple[float, list[str]]:
    """F1 of detected cuts against cuts.json with its 2-frame tolerance, and the misses."""
    tp = fp = fn = 0
    wrong = []
    for name, detected in found.items():
        spans = UNLISTED_GRADUAL.get(name, [])
        detected = [c for c in detected if not any(a <= c <= b for a, b in spans)]
        fps = cuts[name]["fps"]
        fps = float(fps) if not isinstance(fps, str) else float(fps.split("avg ")[1].rstrip(")"))
        tolerance = 2 / fps + 1e-3
        truth = list(cuts[name]["cuts_s"])
        hits = 0
        for cut in detected:
            match = next((t for t in truth if abs(t - cut) <= tolerance), None)
            if match is not None:
                truth.remove(match)
                hits += 1
        tp, fp, fn = tp + hits, fp + len(detected) - hits, fn + len(truth)
        if len(detected) != hits or truth:
            wrong.append(f"{name}: found {detected}, expected {cuts[name]['cuts_s']}")
    return 2 * tp / (2 * tp + fp + fn), wrong


def detect_all(sample_videos: Path, cuts: dict, detector: str) -> dict[str, list[float]]:
    found = {}
    for name in cuts:
        facts = probe(sample_videos / name)
        settings = DetectorSettings(detector=detector)
        analysis = analyse_video(sample_videos / name, facts, settings, SampleSettings(), 30.0)
        assert analysis.frames_decoded == facts.frame_count, name
        found[name] = analysis.cuts_s
    return found


@pytest.fixture(scope="module")
def detected(sample_videos: Path, cuts: dict) -> dict[str, list[float]]:
    """The default detector's cuts."""
    return detect_all(sample_videos, cuts, DetectorSettings().detector)


@pytest.mark.slow  # decodes every sample clip
def test_detected_cuts_reach_f1_of_at_least_098(detected: dict, cuts: dict):
    f1, wrong = f1_against(detected, cuts)
    assert f1 >= 0.98, wrong


@pytest.mark.slow  # decodes every sample clip
def test_the_content_detector_still_scores_its_f1_of_1(sample_videos: Path, cuts: dict):
    f1, wrong = f1_against(detect_all(sample_videos, cuts, "content"), cuts)
    assert f1 == 1.0, wrong


@pytest.mark.slow  # decodes every sample clip
def test_the_default_detector_finds_the_dissolve_cuts_json_leaves_out(detected: dict):
    ((start, end),) = UNLISTED_GRADUAL["testvideo.mp4"]
    assert [c for c in detected["testvideo.mp4"] if start <= c <= end]


@pytest.mark.slow  # decodes every sample clip
def test_no_cut_inside_fades_or_fast_camera_moves(detected: dict):
    assert detected["cockatoo.mp4"] == []
    assert detected["fades.mp4"] == []
    assert all(cut > 2.5 for cut in detected["big_buck_bunny_0_30.webm"])


def test_the_f1_measure_itself_sees_a_miss_and_a_false_cut(cuts: dict):
    f1, wrong = f1_against({"bikes.mp4": [1.2, 3.04, 5.0]}, cuts)
    assert f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 3)) and wrong


def test_a_video_without_cuts_is_one_scene():
    assert [(s.start_s, s.end_s) for s in tile_scenes([], 12.5, 30)] == [(0.0, 12.5)]


def test_scenes_tile_the_duration_and_long_shots_split_evenly():
    spans = tile_scenes([10.0, 75.0], 80.0, max_scene_s=30)
    assert [(round(s.start_s, 3), round(s.end_s, 3)) for s in spans] == [
        (0.0, 10.0),
        (10.0, 31.667),
        (31.667, 53.333),
        (53.333, 75.0),
        (75.0, 80.0),
    ]
    assert [s.index for s in spans] == list(range(5))
    assert tiling_problems([(s.start_s, s.end_s) for s in spans], 80.0) == []


def test_cuts_outside_the_video_or_repeated_are_ignored():
    spans = tile_scenes([0.0, 5.0, 5.0, 12.0], 10.0, 30)
    assert [(s.start_s, s.end_s) for s in spans] == [(0.0, 5.0), (5.0, 10.0)]


def test_the_tiling_check_finds_gaps_overlaps_and_a_short_end():
    problems = tiling_problems([(0.0, 1.0), (1.5, 2.0), (1.9, 3.0)], 4.0)
    assert any("gap" in p for p in problems)
    assert any("overlap" in p for p in problems)
    assert any("last scene ends" in p for p in problems)
    assert tiling_problems([], 1.0) == ["no scenes"]
