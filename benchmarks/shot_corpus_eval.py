"""Shot detectors on the generated corpus (`shot_corpus.py`), per category, and on the sample clips.

Every detector reads the frames of the one decode pass (`analyse_video`). The fused detector's
thresholds are chosen on the corpus's tuning half (a grid search replaying the features it
recorded, so the grid costs no decoding) and reported on the held-out half.

    .venv/bin/python benchmarks/shot_corpus_eval.py --per-category 20          # the README table
    .venv/bin/python benchmarks/shot_corpus_eval.py --per-category 4 --no-transnet
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from benchmarks.shot_corpus import CATEGORIES, CorpusClip, build_corpus
from heimdex_pipeline.media.analyse import analyse_video
from heimdex_pipeline.media.detect import DetectorSettings
from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.media.fused import FusedDetector, FusedThresholds
from heimdex_pipeline.media.probe import probe

TOLERANCE_FRAMES = 2


def match(found: list[float], clip: CorpusClip) -> tuple[int, int, int]:
    """(true, false, missed) boundaries: a hard cut within 2 frames; a gradual transition
    anywhere in its span, widened by 2 frames."""
    slack = TOLERANCE_FRAMES / clip.fps + 1e-3
    remaining = list(clip.boundaries)
    hits = 0
    for cut in sorted(found):
        for boundary in remaining:
            low, high = boundary.span_s or (boundary.time_s, boundary.time_s)
            if low - slack <= cut <= high + slack:
                remaining.remove(boundary)
                hits += 1
                break
    return hits, len(found) - hits, len(remaining)


def table(clips: Iterable[CorpusClip], found: dict[str, list[float]]) -> dict[str, dict]:
    """Precision, recall and F1 per category (and overall) of these detections."""
    rows: dict[str, list[int]] = {}
    for clip in clips:
        counts = match(found[clip.path], clip)
        for name in (clip.category, "all"):
            rows[name] = [a + b for a, b in zip(rows.get(name, [0, 0, 0]), counts, strict=True)]
    out = {}
    for name, (tp, fp, fn) in rows.items():
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        out[name] = {"tp": tp, "fp": fp, "fn": fn, "precision": round(precision, 3),
                     "recall": round(recall, 3), "f1": round(f1, 3)}  # fmt: skip
    return out


def run_detector(
    clips: list[CorpusClip], make: Callable[[], object] | str
) -> tuple[dict, dict, float]:
    """Cuts per clip, the detector objects (for replay), and frames per second of the pass."""
    found, detectors, frames, seconds = {}, {}, 0, 0.0
    for clip in clips:
        facts = probe(clip.path)
        shots = make() if callable(make) else None
        settings = DetectorSettings(detector=make if isinstance(make, str) else "content")
        started = time.perf_counter()
        analysis = analyse_video(clip.path, facts, settings, SampleSettings(), 30.0, shots=shots)
        seconds += time.perf_counter() - started
        frames += analysis.frames_decoded
        found[clip.path] = analysis.cuts_s
        detectors[clip.path] = shots
    return found, detectors, frames / seconds


def replay(detector: FusedDetector, thresholds: FusedThresholds) -> list[float]:
    """The fused detector's boundaries under other thresholds, from the features it recorded."""
    again = FusedDetector.replaying(detector, thresholds)
    again.finish()
    return again.cuts_s


GRID = {
    "cut_hash": [0.22, 0.26, 0.30, 0.35],
    "cut_hist": [0.15, 0.20, 0.25, 0.30],
    "adaptive": [2.0, 2.5, 3.0, 4.0],
    "gradual_hash": [0.25, 0.30, 0.35, 0.40],
    "gradual_hist": [0.20, 0.25, 0.30, 0.40],
    "gradual_contrast": [1.5, 2.0, 2.5, 3.0],
    "dip_hash": [0.20, 0.25, 0.30, 0.35, 0.40],
}


def tune(
    clips: list[CorpusClip], detectors: dict[str, FusedDetector]
) -> tuple[FusedThresholds, float]:
    """Coordinate search over GRID on these clips: maximise the worst category's F1 (then the
    mean), two passes."""
    best = FusedThresholds()

    def objective(thresholds: FusedThresholds) -> tuple[float, float]:
        found = {c.path: replay(detectors[c.path], thresholds) for c in clips}
        rows = table(clips, found)
        f1s = [row["f1"] for name, row in rows.items() if name != "all"]
        return min(f1s), sum(f1s) / len(f1s)

    score = objective(best)
    for _ in range(2):
        for name, values in GRID.items():
            for value in values:
                candidate = dataclasses.replace(best, **{name: value})
                result = objective(candidate)
                if result > score:
                    best, score = candidate, result
    return best, score[0]


def sample_clip_f1(detector: str | Callable[[], object], folder: Path) -> tuple[float, list[str]]:
    from heimdex_pipeline_tests.test_detect import f1_against

    cuts = json.loads((folder / "cuts.json").read_text())
    found = {}
    for name in cuts:
        if name.startswith("_"):
            continue
        path = folder / name
        shots = detector() if callable(detector) else None
        settings = DetectorSettings(detector=detector if isinstance(detector, str) else "content")
        found[name] = analyse_video(
            path, probe(path), settings, SampleSettings(), 30.0, shots=shots
        ).cuts_s
    return f1_against(found, cuts)


def main() -> None:
    from benchmarks._common import save

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-category", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-transnet", action="store_true")
    args = parser.parse_args()
    samples = Path("../shared/videos")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        clips = build_corpus(Path(tmp), samples, args.per_category, args.seed)
        print(f"corpus: {len(clips)} clips in {time.perf_counter() - started:.0f} s", flush=True)
        tune_half = [c for c in clips if c.split == "tune"]
        held_out = [c for c in clips if c.split == "held_out"]
        results = {}
        found, _, fps = run_detector(clips, "content")
        results["content"] = {"held_out": table(held_out, found), "fps": round(fps)}
        found, detectors, fps = run_detector(clips, FusedDetector)
        results["fused_untuned"] = {"held_out": table(held_out, found), "fps": round(fps)}
        thresholds, worst = tune(tune_half, detectors)
        print("tuned:", thresholds, "worst tune F1", worst, flush=True)
        tuned = {c.path: replay(detectors[c.path], thresholds) for c in clips}
        results["fused"] = {
            "held_out": table(held_out, tuned),
            "tune": table(tune_half, tuned),
            "thresholds": thresholds.as_dict(),
            "fps": round(fps),
        }
        if not args.no_transnet:
            found, _, fps = run_detector(clips, "transnetv2")
            results["transnetv2"] = {"held_out": table(held_out, found), "fps": round(fps)}
    for name, result in results.items():
        print(name, json.dumps(result["held_out"]["all"]), "fps", result["fps"])
    print("| category | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for category in [*CATEGORIES, "all"]:
        cells = []
        for result in results.values():
            row = result["held_out"].get(category)
            cells.append(
                f"{row['precision']:.2f} / {row['recall']:.2f} / **{row['f1']:.3f}**" if row else ""
            )
        print(f"| {category} | " + " | ".join(cells) + " |")
    save(f"shot_corpus_{args.per_category}", {"results": results, "grid": GRID})


if __name__ == "__main__":
    main()
