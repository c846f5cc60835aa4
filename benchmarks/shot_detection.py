"""Per-clip cut accuracy: our detector vs PySceneDetect's defaults, against cuts.json."""

from __future__ import annotations

import json
import warnings

from _common import clips, sample_videos, save

from heimdex_pipeline.media.analyse import analyse_video
from heimdex_pipeline.media.detect import DetectorSettings
from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.media.probe import probe

warnings.filterwarnings("ignore")


def fps_of(facts: dict) -> float:
    fps = facts["fps"]
    return float(fps.split("avg ")[1].rstrip(")")) if isinstance(fps, str) else float(fps)


def score(found: list[float], truth: list[float], fps: float) -> tuple[int, int, int]:
    remaining = list(truth)
    tp = 0
    for cut in found:
        match = next((t for t in remaining if abs(t - cut) <= 2 / fps + 1e-3), None)
        if match is not None:
            remaining.remove(match)
            tp += 1
    return tp, len(found) - tp, len(remaining)


def pyscenedetect_defaults(path, detector_cls) -> list[float]:
    from scenedetect import open_video
    from scenedetect.scene_manager import SceneManager

    manager = SceneManager()
    manager.add_detector(detector_cls())
    manager.detect_scenes(open_video(str(path), backend="pyav"))
    return [start.seconds for start, _ in manager.get_scene_list()[1:]]


def main() -> None:
    from scenedetect import AdaptiveDetector, ContentDetector

    folder = sample_videos()
    cuts = json.loads((folder / "cuts.json").read_text())
    methods = {
        "heimdex": lambda p: (
            analyse_video(p, probe(p), DetectorSettings(), SampleSettings(), 30.0).cuts_s
        ),
        "content_default": lambda p: pyscenedetect_defaults(p, ContentDetector),
        "adaptive_default": lambda p: pyscenedetect_defaults(p, AdaptiveDetector),
    }
    totals = {m: [0, 0, 0] for m in methods}
    rows = []
    for name in clips(folder):
        truth = cuts[name]["cuts_s"]
        row = {"clip": name, "truth": truth}
        for method, detect in methods.items():
            found = [round(c, 3) for c in detect(folder / name)]
            tp, fp, fn = score(found, truth, fps_of(cuts[name]))
            totals[method] = [a + b for a, b in zip(totals[method], (tp, fp, fn), strict=True)]
            row[method] = {"found": found, "tp": tp, "fp": fp, "fn": fn}
        rows.append(row)
    f1 = {m: 2 * t[0] / (2 * t[0] + t[1] + t[2]) for m, t in totals.items()}
    save("shot_detection", {"rows": rows, "totals": totals, "f1": f1})
    print("| clip | cuts | heimdex (TP/FP/FN) | ContentDetector | AdaptiveDetector |")
    print("|---|---|---|---|---|")
    for row in rows:
        cells = [f"{row[m]['tp']}/{row[m]['fp']}/{row[m]['fn']}" for m in methods]
        print(f"| {row['clip']} | {len(row['truth'])} | " + " | ".join(cells) + " |")
    print("| **F1** | | " + " | ".join(f"**{f1[m]:.3f}**" for m in methods) + " |")


if __name__ == "__main__":
    main()
