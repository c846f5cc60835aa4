"""LanceDB search on clustered 512-d unit vectors: indexed vs exact, latency and recall@10.

python benchmarks/vector_search.py 10000 100000 1000000
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
from _common import machine, save

os.environ.setdefault("LANCEDB_LOG", "error")
import lancedb
from lancedb.index import IvfHnswSq

DIM = 512
QUERIES = 200
K = 10
FLAT_MAX_ROWS = 100_000  # LanceDB's unindexed search is timed up to this size (slow beyond)
# (nprobes, ef, refine_factor): from LanceDB's defaults to wider HNSW search and exact re-ranking.
SEARCH_SETTINGS = [
    (1, None, None),
    (4, 128, None),
    (16, 256, None),
    (16, 512, None),
    (16, 256, 5),
    (16, 512, 5),
    (32, 1024, 10),
]


def clustered(rows: int, seed: int = 0) -> np.ndarray:
    """Unit vectors in 1,000 clusters, as scene embeddings of many videos look."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1000, DIM)).astype(np.float32)
    out = np.empty((rows, DIM), np.float32)
    for start in range(0, rows, 100_000):
        stop = min(rows, start + 100_000)
        labels = rng.integers(0, len(centers), stop - start)
        out[start:stop] = centers[labels] + 0.6 * rng.normal(size=(stop - start, DIM))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def exact_top_k(data: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found, latency = [], []
    for query in queries:
        started = time.perf_counter()
        scores = data @ query
        top = np.argpartition(-scores, K)[:K]
        found.append(top[np.argsort(-scores[top])])
        latency.append((time.perf_counter() - started) * 1000)
    return np.stack(found), latency


def unindexed_latency(table, queries: np.ndarray, count: int = 30) -> dict:
    """LanceDB's exact search before the index exists (what a small table gets)."""
    latency = []
    for query in queries[:count]:
        started = time.perf_counter()
        table.search(query, vector_column_name="vector").distance_type("cosine").limit(K).select(
            ["id"]
        ).to_arrow()
        latency.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(latency), "p95_ms": float(np.percentile(latency, 95))}


def run(rows: int, folder: str) -> dict:
    data = clustered(rows)
    rng = np.random.default_rng(1)
    queries = data[rng.integers(0, rows, QUERIES)] + 0.05 * rng.normal(size=(QUERIES, DIM))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    truth, exact_ms = exact_top_k(data, queries)

    db = lancedb.connect(folder)
    name = f"bench_{rows}"
    build_s = flat = None
    if name in db.list_tables().tables:  # kept by HEIMDEX_BENCH_KEEP: the same seeded data
        table = db.open_table(name)
    else:
        table = db.create_table(
            name,
            pa.table(
                {
                    "id": pa.array(np.arange(rows, dtype=np.int64)),
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), DIM),
                }
            ),
        )
        flat = unindexed_latency(table, queries) if rows <= FLAT_MAX_ROWS else None
        started = time.perf_counter()
        table.create_index("vector", config=IvfHnswSq(distance_type="cosine"))
        build_s = time.perf_counter() - started
    settings = []
    for nprobes, ef, refine in SEARCH_SETTINGS:
        latency, recall = [], []
        for query, expected in zip(queries, truth, strict=True):
            started = time.perf_counter()
            builder = (
                table.search(query, vector_column_name="vector")
                .distance_type("cosine")
                .nprobes(nprobes)
            )
            if ef is not None:
                builder = builder.ef(ef)
            if refine is not None:
                builder = builder.refine_factor(refine)
            hits = builder.limit(K).select(["id"]).to_arrow()
            latency.append((time.perf_counter() - started) * 1000)
            recall.append(len(set(hits["id"].to_pylist()) & set(expected.tolist())) / K)
        settings.append(
            {
                "nprobes": nprobes,
                "ef": ef,
                "refine_factor": refine,
                "recall_at_10": float(np.mean(recall)),
                "p50_ms": statistics.median(latency),
                "p95_ms": float(np.percentile(latency, 95)),
            }
        )
    return {
        "rows": rows,
        "index": "IVF_HNSW_SQ (defaults)",
        "index_build_s": build_s,
        "exact_numpy_p50_ms": statistics.median(exact_ms),
        "exact_numpy_p95_ms": float(np.percentile(exact_ms, 95)),
        "lancedb_unindexed": flat,
        "indexed": settings,
    }


def text_query_end_to_end(folder: str, rows: int) -> dict:
    """A text query through the real-size text encoder, then the search `heimdex search` runs."""
    from heimdex_pipeline.clip.model import load_clip
    from heimdex_pipeline.stores.vectors import nearest

    encoder = load_clip("ViT-B-32", "random")
    table = lancedb.connect(folder).open_table(f"bench_{rows}")
    latency = []
    for text in ["a man on a bicycle", "a dog on a beach", "a city at night"] * 7:
        started = time.perf_counter()
        vector = encoder.encode_texts([text])[0]
        nearest(table, vector).limit(K).select(["id"]).to_arrow()
        latency.append((time.perf_counter() - started) * 1000)
    return {
        "rows": rows,
        "p50_ms": statistics.median(latency),
        "p95_ms": float(np.percentile(latency, 95)),
    }


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    results = []
    keep = os.environ.get("HEIMDEX_BENCH_KEEP")  # a folder: keep the tables for a later run
    with tempfile.TemporaryDirectory() as scratch:
        folder = keep or scratch
        for rows in sizes:
            result = run(rows, folder)
            results.append(result)
            build_s = result["index_build_s"]
            build = "kept from an earlier run" if build_s is None else f"{build_s:.0f} s"
            print(
                f"{rows:>9} rows: build {build}, exact numpy "
                f"p50 {result['exact_numpy_p50_ms']:.1f} ms"
            )
            if result["lancedb_unindexed"]:
                flat = result["lancedb_unindexed"]
                print(f"    LanceDB without index: p50 {flat['p50_ms']:.1f} ms")
            for s in result["indexed"]:
                print(
                    f"    nprobes {s['nprobes']:>2} ef {s['ef']} refine {s['refine_factor']}: "
                    f"recall@10 {s['recall_at_10']:.3f}, "
                    f"p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms"
                )
        end_to_end = text_query_end_to_end(folder, sizes[-1])
    print(f"text query end to end at {end_to_end['rows']} rows: p50 {end_to_end['p50_ms']:.1f} ms")
    save(f"vector_search_{'_'.join(map(str, sizes))}", {"sizes": results, "text_query": end_to_end})
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
