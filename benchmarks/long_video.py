"""A two-hour film against a ten-minute one: `heimdex index` wall time, time per minute of
video, peak memory (the command and its CLIP worker), scenes found.

    .venv/bin/python benchmarks/long_video.py [--repeats 2] [--model ViT-B-32]

Both films are generated (seeded, `heimdex_pipeline_tests/media_files.make_long_video`: 96x54,
10 fps, a hard cut every 3-10 s) under a temporary folder; each run indexes one film in a fresh
home, alternating short and long. With `--model tiny` the tests' tiny open_clip config is used
(speed of everything but CLIP); the default is real-size ViT-B-32 with random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import save
from heimdex_pipeline_tests.media_files import make_long_video

PYTHON = sys.executable
LENGTHS = {"ten_minutes": 600, "two_hours": 7200}


def tiny_model(folder: Path) -> tuple[str, str]:
    """The tests' tiny open_clip config and random weights, made in a child process (torch stays
    out of this one, whose forks measure the runs)."""
    script = (
        "import json, sys, open_clip, torch\n"
        "from heimdex_pipeline_tests.conftest import TINY_CLIP_CONFIG\n"
        "config, checkpoint = sys.argv[1], sys.argv[2]\n"
        "open(config, 'w').write(json.dumps(TINY_CLIP_CONFIG))\n"
        "open_clip.add_model_config(config)\n"
        "torch.manual_seed(1234)\n"
        "torch.save(open_clip.create_model('heimdex-tiny').state_dict(), checkpoint)\n"
    )
    config, checkpoint = folder / "heimdex-tiny.json", folder / "heimdex-tiny.pt"
    root = str(Path(__file__).resolve().parents[1])
    subprocess.run([PYTHON, "-c", script, str(config), str(checkpoint)], check=True, cwd=root)
    return str(config), str(checkpoint)


def index_once(film: Path, home: Path, model: tuple[str, str]) -> dict:
    env = {
        **os.environ,
        "HEIMDEX_HOME": str(home),
        "HEIMDEX_CLIP_MODEL": model[0],
        "HEIMDEX_CLIP_PRETRAINED": model[1],
        "LANCEDB_LOG": "error",
    }
    env.pop("DAGSTER_HOME", None)
    command = [PYTHON, "-m", "heimdex_pipeline.cli.main", "index", str(film), "--json"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(err.decode()[-3000:])
    # wait4 gives this child's own peak (its CLIP worker, a grandchild it waited for, included)
    (outcome,) = json.loads(out)
    return {"wall_s": wall, "scenes": len(outcome["scenes"]), "duration_s": outcome["duration_s"]}


def peak_of(function, *args) -> tuple[dict, float]:
    """Run `function` in a fresh child of this script; its result and the peak RSS (MiB) of
    that child and everything below it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        with os.fdopen(write, "w") as pipe:
            pipe.write(json.dumps(function(*args)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0 or not data:
        raise SystemExit("a run failed")
    return json.loads(data), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", choices=["ViT-B-32", "tiny"], default="ViT-B-32")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {name: [] for name in LENGTHS}
    with tempfile.TemporaryDirectory(prefix="heimdex-long-") as folder:
        root = Path(folder)
        model = tiny_model(root) if args.model == "tiny" else ("ViT-B-32", "random")
        films = {}
        for name, seconds in LENGTHS.items():
            films[name] = root / f"{name}.mp4"
            cuts = make_long_video(films[name], seconds)
            print(f"{name}: {seconds} s, {len(cuts)} cuts", flush=True)
        for repeat in range(args.repeats):
            for name in LENGTHS:
                home = root / f"home-{name}-{repeat}"
                run, peak = peak_of(index_once, films[name], home, model)
                run["peak_rss_mib"] = round(peak)
                results[name].append(run)
                print(f"  {name} #{repeat + 1}: {run}", flush=True)
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        summary[name] = {
            "wall_s_median": round(wall, 1),
            "s_per_video_minute": round(wall / (LENGTHS[name] / 60), 3),
            "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs),
            "scenes": runs[0]["scenes"],
        }
    per_minute = {n: s["s_per_video_minute"] for n, s in summary.items()}
    summary["long_over_short_per_minute"] = round(
        per_minute["two_hours"] / per_minute["ten_minutes"], 3
    )
    print(json.dumps(summary, indent=2))
    save("long_video", {"model": args.model, "runs": results, "summary": summary})


if __name__ == "__main__":
    main()
