"""(a) bare decode, (b) PySceneDetect API + one image per scene, (c) our scenes + thumbnails."""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path

import av
from _common import clips, machine, sample_videos, save

from heimdex_pipeline.media.analyse import analyse_video
from heimdex_pipeline.media.detect import DetectorSettings, tile_scenes
from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.media.probe import probe
from heimdex_pipeline.media.thumbnail import scene_pictures
from heimdex_pipeline.stores.bundles import pack_files, pack_samples, unpack_samples

warnings.filterwarnings("ignore")


def bare_decode(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def pyscenedetect_api(path: Path, out: Path) -> int:
    from scenedetect import AdaptiveDetector, open_video, save_images
    from scenedetect.scene_manager import SceneManager

    video = open_video(str(path), backend="pyav")
    manager = SceneManager()
    manager.add_detector(AdaptiveDetector())
    manager.detect_scenes(video)
    scenes = manager.get_scene_list(start_in_scene=True)
    save_images(scenes, video, num_images=1, image_extension="webp", output_dir=str(out))
    return len(scenes)


def ours(path: Path, detector: str = "content") -> int:
    """What the scenes and thumbnails assets compute, minus the catalog and Dagster."""
    facts = probe(path)
    settings = DetectorSettings(detector=detector)
    analysis = analyse_video(path, facts, settings, SampleSettings(), 30.0)
    spans = tile_scenes(analysis.cuts_s, facts.duration_s, 30.0)
    samples = unpack_samples(pack_samples(analysis.samples))
    frames = {}
    for span in spans:
        pictures = scene_pictures(samples, span, 480, 224)
        for number, jpeg in enumerate(pictures.embedder_jpegs):
            frames[f"{span.index}/{number}.jpg"] = jpeg
    pack_files(frames)
    return len(spans)


def timed(fn, path: Path) -> float:
    started = time.perf_counter()
    fn(path)
    return time.perf_counter() - started


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--detectors", default="content,fused", help="(c) with each detector")
    args = parser.parse_args()
    detectors = args.detectors.split(",")
    folder = sample_videos()
    paths = [folder / name for name in clips(folder)]
    frames = sum(bare_decode(p) for p in paths)  # also warms the page cache
    with tempfile.TemporaryDirectory() as out:
        passes = {
            "a_bare_decode": bare_decode,
            "b_pyscenedetect": lambda p: pyscenedetect_api(p, Path(out)),
            **{f"c_{d}": lambda p, d=d: ours(p, d) for d in detectors},
        }
        for fn in passes.values():  # imports and first calls out of the timing
            fn(paths[0])
        runs = {name: [] for name in passes}
        for _ in range(args.repeats):
            # Interleaved clip by clip: each clip's passes run within a second or two of each
            # other, so the machine's drift (this one's speed wanders by 15 % over a minute)
            # falls on all of them alike.
            totals = dict.fromkeys(passes, 0.0)
            for path in paths:
                for name, fn in passes.items():
                    totals[name] += timed(fn, path)
            for name, seconds in totals.items():
                runs[name].append(seconds)
    median = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "clips": len(paths),
        "frames": frames,
        "repeats": args.repeats,
        "seconds_median": median,
        "b_over_a": median["b_pyscenedetect"] / median["a_bare_decode"],
        **{f"c_{d}_over_a": median[f"c_{d}"] / median["a_bare_decode"] for d in detectors},
        # the same, as the median of each repeat's own ratio
        **{
            f"c_{d}_over_a_per_repeat": statistics.median(
                c / a for c, a in zip(runs[f"c_{d}"], runs["a_bare_decode"], strict=True)
            )
            for d in detectors
        },
        "seconds": runs,
    }
    save("media_pipeline", result)
    print(f"machine: {machine()}; {len(paths)} clips, {frames} frames, median of {args.repeats}")
    for key, seconds in median.items():
        ratio = seconds / median["a_bare_decode"]
        print(f"  {key:<16} {seconds:6.2f} s  ({frames / seconds:6.0f} frames/s, {ratio:.2f}x (a))")


if __name__ == "__main__":
    main()
