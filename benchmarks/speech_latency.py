"""Speech and hybrid query latency through `heimdex serve`, at 100k and 1M transcript lines
(generated text: sentences of a 5,000-word Zipf vocabulary) beside as many scene vectors
(clustered, 512-d, IVF_HNSW_SQ as search_index builds it), one client, ViT-B-32 with random
weights encoding the hybrid query's text.

    .venv/bin/python benchmarks/speech_latency.py [--rows 100000 1000000] [--seconds 20]
        [--keep DIR]   # build each library once in DIR, measure it again later
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import save
from _runs import PYTHON, free_port, heimdex_env
from serve_latency import VIDEOS, build_library, figures, owner_of

VOCABULARY = 5_000
LINE_WORDS = (4, 14)


def vocabulary() -> list[str]:
    rng = np.random.default_rng(5)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(letters, rng.integers(3, 9))))
    return sorted(words)


def build_transcripts(home: Path, rows: int) -> float:
    """A speech model, active, and its transcripts table of `rows` lines on the library's
    scenes (scene-i of video i % VIDEOS), with the full-text index; seconds to index."""
    from heimdex_pipeline.catalog.models import SpeechModel, VideoTranscript, utcnow
    from heimdex_pipeline.settings import load_settings
    from heimdex_pipeline.stores import open_stores
    from heimdex_pipeline.stores.transcripts import (
        ensure_text_index,
        transcripts_schema,
        transcripts_table,
    )

    stores = open_stores(load_settings({"HEIMDEX_HOME": str(home)}))
    with stores.catalog.session() as session:
        session.add(SpeechModel(model_id="bench", setting="tiny.en", activated_at=utcnow()))
        session.flush()
        session.add_all(
            VideoTranscript(video_id=f"video-{n:05d}", model_id="bench", status="transcribed")
            for n in range(VIDEOS)
        )
    words = np.array(vocabulary())
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    weights /= weights.sum()
    rng = np.random.default_rng(7)
    table = transcripts_table(stores.vectors, "bench")
    for start in range(0, rows, 100_000):
        count = min(100_000, rows - start)
        lengths = rng.integers(*LINE_WORDS, count)
        drawn = rng.choice(words, size=int(lengths.sum()), p=weights)
        cuts = np.cumsum(lengths)[:-1]
        texts = [" ".join(part) for part in np.split(drawn, cuts)]
        ids = np.arange(start, start + count)
        table.add(
            pa.table(
                {
                    "line_id": pa.array([f"scene-{i}:00000" for i in ids]),
                    "video_id": pa.array([f"video-{i % VIDEOS:05d}" for i in ids]),
                    "owner": pa.array([owner_of(i % VIDEOS, 0) for i in ids]),
                    "scene_id": pa.array([f"scene-{i}" for i in ids]),
                    "scene_index": pa.array((ids // VIDEOS).astype(np.int32)),
                    "scene_start_s": pa.array((ids // VIDEOS) * 5.0),
                    "scene_end_s": pa.array((ids // VIDEOS) * 5.0 + 5.0),
                    "segment_index": pa.array(np.zeros(count, np.int32)),
                    "start_s": pa.array((ids // VIDEOS) * 5.0 + 0.5),
                    "end_s": pa.array((ids // VIDEOS) * 5.0 + 4.0),
                    "text": pa.array(texts),
                    "line_text": pa.array(texts),
                    "words": pa.array(
                        [json.dumps([[f" {w}", 1.0, 1.2] for w in t.split()]) for t in texts]
                    ),
                    "language": pa.array(["en"] * count),
                    "model_id": pa.array(["bench"] * count),
                },
                schema=transcripts_schema(),
            )
        )
    started = time.perf_counter()
    table.optimize()  # fold every line into the full-text index (as the nightly job does)
    ensure_text_index(table)
    return time.perf_counter() - started


def load(base: str, mode: str, seconds: float) -> list[float]:
    rng = np.random.default_rng(3)
    words = vocabulary()
    common = words[:200]  # the Zipf head: queries that match many lines
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pick = rng.integers(0, 3)
        if pick == 0:
            query = " ".join(rng.choice(common, 2))
        elif pick == 1:
            query = " ".join(rng.choice(words, 3))
        else:
            query = '"' + " ".join(rng.choice(common, 2)) + '"'
        url = f"{base}/api/search?limit=20&mode={mode}&q={urllib.parse.quote(query)}"
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as answer:
            answer.read()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def built_home(home: Path, rows: int, vector_rows: int | None) -> tuple[float, float]:
    """The library and transcripts in `home`, built unless `home` already holds these (a 1M
    build takes ~15 min here): seconds to build, seconds of the full-text index."""
    done = home / "built.json"
    wanted = {"lines": rows, "vectors": vector_rows or rows}
    if done.exists():
        kept = json.loads(done.read_text())
        if kept["wanted"] != wanted:
            raise SystemExit(f"{home} holds another library: {kept['wanted']}")
        return kept["build_s"], kept["fts_s"]
    started = time.perf_counter()
    build_library(home, vector_rows or rows)
    fts_s = build_transcripts(home, rows)
    built = time.perf_counter() - started
    done.write_text(json.dumps({"wanted": wanted, "build_s": built, "fts_s": fts_s}))
    return built, fts_s


def measure(rows: int, seconds: float, vector_rows: int | None, keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        home = keep / f"{rows}-{vector_rows or rows}" if keep else Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        built, fts_s = built_home(home, rows, vector_rows)
        print(f"{rows}: built in {built:.0f} s (full-text index {fts_s:.0f} s)", flush=True)
        port = free_port()
        server = subprocess.Popen(
            [PYTHON, "-m", "heimdex_pipeline.cli.main", "serve", "--port", str(port)],
            env=heimdex_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("heimdex serve did not come up")
                time.sleep(0.5)
            load(base, "hybrid", 3)  # warm-up
            result = {
                "lines": rows,
                "scene_vectors": vector_rows or rows,
                "build_s": round(built, 1),
                "fts_index_s": round(fts_s, 1),
            }
            for mode in ("speech", "hybrid", "visual"):
                result[mode] = figures(load(base, mode, seconds))
                print(rows, mode, result[mode], flush=True)
            return result
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--vector-rows", type=int, help="scene vectors beside the lines (default: as many)"
    )
    parser.add_argument("--keep", type=Path, help="build each library here once and reuse it")
    args = parser.parse_args()
    results = [measure(rows, args.seconds, args.vector_rows, args.keep) for rows in args.rows]
    name = "speech_latency" + (f"_{args.vector_rows}_vectors" if args.vector_rows else "")
    save(name, {"results": results})


if __name__ == "__main__":
    main()
