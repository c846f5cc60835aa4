"""The generated ground-truth corpus, its scorer, and the detectors on a small seeded subset of it
(`benchmarks/shot_corpus_eval.py` runs the full one for the README)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from benchmarks.shot_corpus import (
    CATEGORIES,
    FORMATS,
    Boundary,
    CorpusClip,
    ShotBank,
    build_corpus,
    make_clip,
)
from benchmarks.shot_corpus_eval import match, replay, run_detector, table
from heimdex_pipeline.media.fused import FusedDetector, FusedThresholds

pytestmark = pytest.mark.slow

PER_CATEGORY, SEED = 5, 7


def _clip(boundaries: list[Boundary], fps: float = 25.0) -> CorpusClip:
    return CorpusClip("x.mp4", "cut_natural", boundaries, "libx264", fps, False, (320, 180),
                      "yuv420p", 100, 0)  # fmt: skip


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ([1.0, 2.5], (2, 0, 0)),
        ([1.08, 2.5], (2, 0, 0)),  # 2 frames late at 25 fps: still the cut
        ([1.13, 2.5], (1, 1, 1)),  # 3 frames: a false cut and a miss
        ([1.0, 2.5, 3.2], (2, 1, 0)),
        ([1.0, 2.05], (2, 0, 0)),  # anywhere in the dissolve's span, widened by 2 frames
        ([1.0, 3.2], (1, 1, 1)),
        ([1.0, 2.2, 2.6], (2, 1, 0)),  # one transition, counted once
    ],
)
def test_the_scorer_sees_hits_misses_false_boundaries_and_spans(found, expected):
    clip = _clip([Boundary(1.0), Boundary(2.5, (2.1, 2.9))])
    assert match(found, clip) == expected


@pytest.fixture(scope="module")
def corpus(sample_videos: Path, tmp_path_factory) -> list[CorpusClip]:
    folder = tmp_path_factory.mktemp("corpus")
    return build_corpus(folder, sample_videos, per_category=PER_CATEGORY, seed=SEED)


def test_the_corpus_covers_every_category_and_many_formats(corpus):
    assert {c.category for c in corpus} == set(CATEGORIES)
    assert {c.codec for c in corpus} >= {"libx264", "mpeg4", "mjpeg", "libvpx"}
    assert {c.pix_fmt for c in corpus} >= {"yuv420p", "yuv444p", "yuvj420p"}
    assert any(c.variable_fps for c in corpus) and len({c.fps for c in corpus}) >= 4
    assert len({c.size for c in corpus}) >= 2 and {c.split for c in corpus} == {"tune", "held_out"}
    for clip in corpus:
        assert clip.boundaries, clip.path  # every clip holds at least its plain cut
        gradual = [b for b in clip.boundaries if b.span_s]
        if clip.category in ("dissolve", "wipe", "fade_between_shots"):
            (transition,) = gradual
            low, high = transition.span_s
            assert low < transition.time_s < high  # the boundary is the transition's middle
        else:
            assert not gradual
        if not CATEGORIES[clip.category][1]:
            assert len(clip.boundaries) == 1  # only the plain cut: the phenomenon is none


def decoded(path: Path) -> str:
    """A digest of every frame's time and pixels, as a decoder gives them."""
    digest = hashlib.sha256()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            digest.update(f"{frame.pts}:".encode() + frame.to_ndarray(format="rgb24").tobytes())
    return digest.hexdigest()


def test_the_same_seed_makes_the_same_corpus(corpus, sample_videos, tmp_path):
    """A clip is made from the seed, its category and its number alone: one clip of each
    category, its number cycling through every format and both kinds of frame timing, made
    again on its own from a new shot bank, has the same boundaries, frames and format, the same
    pictures at the same times, and is the same file. Except where the encoder or the muxer
    does not repeat itself: libvpx's realtime mode chooses by the clock (its pictures differ a
    little from one build to the next), and Matroska stamps a random segment id."""
    bank = ShotBank(sample_videos)
    numbers = [kind % PER_CATEGORY for kind in range(len(CATEGORIES))]
    assert {n % len(FORMATS) for n in numbers} == set(range(len(FORMATS)))
    timings = set()
    for kind, (category, number) in enumerate(zip(CATEGORIES, numbers, strict=True)):
        first = corpus[kind * PER_CATEGORY + number]
        again = make_clip(tmp_path, bank, category, number, SEED)
        assert Path(again.path).name == Path(first.path).name
        assert dataclasses.replace(again, path=first.path) == first
        if first.codec != "libvpx":
            assert decoded(Path(again.path)) == decoded(Path(first.path)), category
        if Path(first.path).suffix not in (".mkv", ".webm"):
            assert Path(again.path).read_bytes() == Path(first.path).read_bytes(), category
        timings.add(again.variable_fps)
    assert timings == {True, False}


def test_the_fused_detector_holds_on_a_seeded_subset_and_beats_content(corpus):
    """Per category on 75 clips the tests make (the README's table is the 300-clip run)."""
    fused, _, _ = run_detector(corpus, FusedDetector)
    content, _, _ = run_detector(corpus, "content")
    fused_rows, content_rows = table(corpus, fused), table(corpus, content)
    assert fused_rows["all"]["f1"] >= 0.9, fused_rows
    assert fused_rows["all"]["f1"] > content_rows["all"]["f1"]
    for category in ("dissolve", "wipe", "fade_between_shots"):  # content cannot see these
        assert fused_rows[category]["recall"] > content_rows[category]["recall"], category
    for category in ("fade_within_shot", "fast_pan", "zoom", "dropped_frames"):
        assert fused_rows[category]["fp"] <= 1, (category, fused_rows[category])


def test_replaying_the_recorded_scores_gives_the_pass_its_own_cuts(corpus):
    """The threshold search replays each clip's recorded scores: with the shipped thresholds it
    must find what the pass found (fades too: their dark frames are counted again)."""
    kinds = {"fade_between_shots", "fade_within_shot", "cut_dark", "dissolve", "flash"}
    clips = [c for c in corpus if c.category in kinds]
    found, detectors, _ = run_detector(clips, FusedDetector)
    assert sum(len(cuts) for cuts in found.values()) >= len(clips)
    for clip in clips:
        assert replay(detectors[clip.path], FusedThresholds()) == found[clip.path], clip.path


def test_the_plain_cut_goes_to_another_picture_not_the_same_one_lit_otherwise():
    """A night shot's plain cut once went to its own picture at full light (a lamp switched on,
    not a new shot), and the corpus counted it a boundary `fused` missed."""
    from benchmarks.shot_corpus import _another_picture, texture

    rng = np.random.default_rng(4)
    picture, other = texture(rng, 1)[0], texture(rng, 1)[0]
    night = (picture * 0.25).astype(np.uint8)
    assert not _another_picture(picture, night)
    assert _another_picture(other, night)
