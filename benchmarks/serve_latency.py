"""`heimdex serve` under load: HTTP latency of text and image queries at 10k, 100k and 1M scene
rows, with 1 and 8 concurrent clients, the server's peak memory, and `GET /api/videos` over
10,000 videos. Real-size ViT-B-32 with random weights (speed only); synthetic clustered vectors.
Text queries are new each time (`text`: the encoder runs) or one of four asked again and again
(`text_cached`); 1, 8 and 32 concurrent clients; requests a second beside the latencies.

With `--users N` the videos are spread over N users (each with a token) and the figure is the
owner pre-filter's price: text queries as a user (a random one each request: their library
only) against the same queries with the admin token (no filter), in alternating rounds.

    .venv/bin/python benchmarks/serve_latency.py [--rows 10000 100000 1000000] [--seconds 20]
    .venv/bin/python benchmarks/serve_latency.py --rows 1000000 --users 1000 [--rounds 6]

`--keep DIR` builds each library once and reuses it (for servers of two versions back to back:
run the script from each version's checkout); `--kinds` and `--clients` pick the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import save
from _runs import PYTHON, free_port, heimdex_env, rss_peak_mb
from PIL import Image

WORDS = [
    "a",
    "man",
    "woman",
    "dog",
    "cat",
    "car",
    "bicycle",
    "street",
    "beach",
    "night",
    "city",
    "people",
    "running",
    "red",
    "blue",
]
VIDEOS = 10_000
REPEATED = ["a dog on a beach", "a red car at night", "people running", "a city street"]
CLIENTS = (1, 8, 32)


ADMIN_TOKEN = "serve-latency-admin-token"


def owner_of(video: int, users: int) -> str:
    return f"user-{video % users:04d}" if users else "local"


def build_library(home: Path, rows: int, users: int = 0) -> list[str]:
    """A catalog of VIDEOS indexed videos (spread over `users` users, when given) and a scenes
    table of `rows` vectors for the ViT-B-32/random model, indexed as search_index would index
    it. The users' tokens."""
    from heimdex_pipeline.catalog.database import upgrade
    from heimdex_pipeline.catalog.models import SearchModel, Video, VideoState, utcnow
    from heimdex_pipeline.catalog.users import add_user
    from heimdex_pipeline.clip.model import load_clip
    from heimdex_pipeline.settings import load_settings
    from heimdex_pipeline.stores import open_stores
    from heimdex_pipeline.stores.vectors import ensure_indexes, scenes_schema

    settings = load_settings({"HEIMDEX_HOME": str(home)})
    upgrade(settings.database_url)
    stores = open_stores(settings)
    identity = load_clip("ViT-B-32", "random").identity
    with stores.catalog.session() as session:
        session.add(SearchModel(model_id=identity.model_id, model="ViT-B-32", pretrained="random",
                                dim=identity.dim, weights_sha256=identity.weights_sha256,
                                activated_at=utcnow()))  # fmt: skip
        session.add_all(
            Video(id=f"video-{n:05d}", owner=owner_of(n, users),
                  source_uri=f"file:///videos/video-{n:05d}.mp4", title=f"video {n}.mp4",
                  state=VideoState.INDEXED, duration_s=60.0)
            for n in range(VIDEOS)
        )  # fmt: skip
        tokens = [add_user(session, owner_of(n, users)) for n in range(users)]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(256, identity.dim)).astype(np.float32)
    table = stores.vectors.scenes_table(identity.model_id, identity.dim)
    for start in range(0, rows, 100_000):
        count = min(100_000, rows - start)
        vectors = centres[rng.integers(0, 256, count)] + 0.3 * rng.normal(
            size=(count, identity.dim)
        ).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.arange(start, start + count)
        table.add(pa.table({
            "scene_id": pa.array([f"scene-{i}" for i in ids]),
            "video_id": pa.array([f"video-{i % VIDEOS:05d}" for i in ids]),
            "owner": pa.array([owner_of(i % VIDEOS, users) for i in ids]),
            "scene_index": pa.array((ids // VIDEOS).astype(np.int32)),
            "start_s": pa.array((ids // VIDEOS) * 5.0),
            "end_s": pa.array((ids // VIDEOS) * 5.0 + 5.0),
            "thumbnail_key": pa.array([f"thumbnails/video-{i % VIDEOS:05d}/{i}.webp" for i in ids]),
            "model_id": pa.array([identity.model_id] * count),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), identity.dim),
        }, schema=scenes_schema(identity.dim)))  # fmt: skip
    started = time.perf_counter()
    ensure_indexes(table, 10_000)
    print(f"{rows} rows indexed in {time.perf_counter() - started:.0f} s", flush=True)
    return tokens


def query_image() -> bytes:
    buffer = io.BytesIO()
    array = np.random.default_rng(1).integers(0, 255, (224, 398, 3), dtype=np.uint8)
    Image.fromarray(array).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _multipart(image: bytes) -> tuple[bytes, str]:
    boundary = "heimdexbench"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def load(
    base: str, kind: str, clients: int, seconds: float, tokens: list[str] | None = None
) -> list[float]:
    """Latencies (ms) of requests from `clients` threads for `seconds` (each with one of
    `tokens`, drawn at random, when given)."""
    body, content_type = _multipart(query_image())
    rng = np.random.default_rng(clients)
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    counter = iter(range(10**9))

    def client() -> None:
        while time.monotonic() < deadline:
            if kind in ("text", "text_cached"):
                if kind == "text":  # a query no one asked before: the encoder runs
                    words = f"{' '.join(rng.choice(WORDS, 4))} {next(counter)}"
                else:  # one of a few, asked again and again (paging, a team's favourites)
                    words = REPEATED[int(rng.integers(0, len(REPEATED)))]
                request = urllib.request.Request(
                    f"{base}/api/search?limit=20&q={urllib.parse.quote(words)}"
                )
            elif kind == "image":
                request = urllib.request.Request(
                    f"{base}/api/search/image?limit=20", data=body,
                    headers={"Content-Type": content_type},
                )  # fmt: skip
            else:
                request = urllib.request.Request(f"{base}/api/videos?limit=50")
            if tokens:
                token = tokens[int(rng.integers(0, len(tokens)))]
                request.add_header("Authorization", f"Bearer {token}")
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def load_one(base: str, text: str) -> None:
    url = f"{base}/api/search?limit=20&q={urllib.parse.quote(text)}"
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()


def figures(latencies: list[float], seconds: float | None = None) -> dict:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        **({"per_s": round(len(ordered) / seconds, 1)} if seconds else {}),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def measure(rows: int, seconds: float, users: int = 0, rounds: int = 6) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if ARGS.keep is not None:  # one library, kept, for servers of several versions
            home = ARGS.keep / f"{rows}-rows-{users}-users"
        started = time.perf_counter()
        if (home / "tokens.json").exists():
            tokens = json.loads((home / "tokens.json").read_text())
        else:
            home.mkdir(parents=True, exist_ok=True)
            tokens = build_library(home, rows, users)
            (home / "tokens.json").write_text(json.dumps(tokens))
        built = time.perf_counter() - started
        port = free_port()
        env = heimdex_env(home, **({"HEIMDEX_API_TOKEN": ADMIN_TOKEN} if users else {}))
        server = subprocess.Popen(
            [PYTHON, "-m", "heimdex_pipeline.cli.main", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        peak = {"mb": 0.0}
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.2):
                peak["mb"] = max(peak["mb"], rss_peak_mb({server.pid}))

        threading.Thread(target=watch, daemon=True).start()
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
            if users:
                return owner_filter_figures(base, rows, users, tokens, seconds, rounds, built)
            load(base, "text", 1, 3)  # warm-up
            result = {"rows": rows, "build_s": round(built, 1)}
            for query in REPEATED:  # the cached kind's queries, asked once before
                load_one(base, query)
            for kind in ARGS.kinds:
                for clients in ARGS.clients:
                    result[f"{kind}_{clients}_clients"] = figures(
                        load(base, kind, clients, seconds), seconds
                    )
                    print(rows, kind, clients, result[f"{kind}_{clients}_clients"], flush=True)
            if rows == min(ARGS.rows):
                result["videos_page_10000_videos"] = figures(load(base, "videos", 1, seconds))
            result["server_peak_rss_mb"] = round(peak["mb"])
            return result
        finally:
            stop.set()
            server.terminate()
            server.wait(timeout=30)


def owner_filter_figures(base, rows, users, tokens, seconds, rounds, built) -> dict:
    """Text queries with the owner pre-filter (a user's token) and without (the admin's), one
    client, in alternating rounds of `seconds / rounds` each: the medians, and their ratio."""
    check = urllib.request.Request(f"{base}/api/search?limit=20&q=a%20dog")
    check.add_header("Authorization", f"Bearer {tokens[0]}")
    with urllib.request.urlopen(check, timeout=60) as answer:
        hits = json.loads(answer.read())["hits"]
    assert hits and {hit["video_owner"] for hit in hits} == {"user-0000"}, hits[:2]
    load(base, "text", 1, 3, [ADMIN_TOKEN])  # warm-up
    load(base, "text", 1, 3, tokens)
    filtered: list[float] = []
    unfiltered: list[float] = []
    per_round = seconds / rounds
    for number in range(rounds):
        order = [(filtered, tokens), (unfiltered, [ADMIN_TOKEN])]
        for sink, given in order if number % 2 == 0 else order[::-1]:
            sink.extend(load(base, "text", 1, per_round, given))
    mine, everyone = figures(filtered), figures(unfiltered)
    result = {
        "rows": rows,
        "users": users,
        "hits_per_page": len(hits),
        "build_s": round(built, 1),
        "owner_filtered": mine,
        "unfiltered": everyone,
        "ratio_p50": round(mine["p50_ms"] / everyone["p50_ms"], 3),
    }
    print(result, flush=True)
    return result


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--users", type=int, default=0, help="spread the videos over N users")
    parser.add_argument("--rounds", type=int, default=6, help="alternations (with --users)")
    parser.add_argument("--kinds", nargs="+", default=["text", "text_cached", "image"])
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS))
    parser.add_argument(
        "--keep", type=Path, help="build each library once under this folder and reuse it"
    )
    ARGS = parser.parse_args()
    results = [measure(rows, ARGS.seconds, ARGS.users, ARGS.rounds) for rows in ARGS.rows]
    for result in results:
        print(result)
    save("serve_latency_owners" if ARGS.users else "serve_latency", {"results": results})


if __name__ == "__main__":
    main()
