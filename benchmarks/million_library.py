"""Heimdex's own operations on one large library, built once: inbox ticks (1,000 new keys, the
same page while its runs wait, the page once indexed), `heimdex backfill --failed` with
`--failed-share` of the library failed, and `heimdex videos --limit 50`, each command in its own
process as an operator runs it; then `GET /api/videos?limit=50` from a `heimdex serve` on the
library (`--requests` of them, one at a time).

    .venv/bin/python benchmarks/million_library.py --library 1000000 --rounds 3

The library (catalog rows and as many `videos` partitions) is written in batches on Heimdex's
pooled PostgreSQL storage (`inbox_ticks.build`), as `deploy/dagster.yaml` runs it. Figures: the
median of `--rounds` for each, and the build time. Dagster's own pages are not measured here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

from benchmarks._common import save  # noqa: E402
from benchmarks._runs import free_port, wait_until_answers  # noqa: E402
from benchmarks.backfill_launch import timed  # noqa: E402
from benchmarks.inbox_ticks import KINDS, _drop, _engine, build, environment  # noqa: E402


def videos_page_ms(env: dict[str, str], requests: int) -> list[float]:
    """Latencies (ms) of `GET /api/videos?limit=50` from `heimdex serve` on the library."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # /health answers 503 while the library has no search index yet: an answer all the same
        wait_until_answers(f"{base}/health", server, 180, "heimdex serve did not come up")
        latencies = []
        for _ in range(requests):
            began = time.perf_counter()
            with urllib.request.urlopen(f"{base}/api/videos?limit=50", timeout=60) as answer:
                page = json.loads(answer.read())
            latencies.append((time.perf_counter() - began) * 1000)
        if len(page["videos"]) != 50:
            raise SystemExit(f"GET /api/videos gave {len(page['videos'])} videos, not 50")
        return latencies
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--failed-share", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    from sqlalchemy import text

    state = build(args.library, pooled=True)
    print(f"library of {args.library:,} built in {state['build_s']} s", flush=True)
    state_file = Path(state["home"]) / "state.json"
    state_file.write_text(json.dumps(state))
    env = environment(state)
    heimdex = [sys.executable, "-m", "heimdex_pipeline.cli.main"]
    figures: dict[str, list[float]] = {k: [] for k in (*KINDS, "backfill_failed_s", "videos_s")}
    try:
        for round_ in range(args.rounds):
            answer = subprocess.run(
                [sys.executable, str(ROOT / "benchmarks" / "inbox_ticks.py"), "--keys",
                 str(args.keys), "--measure", f"{state_file}:m{round_}"],
                env=env, capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            if answer.returncode:
                raise SystemExit(f"tick round {round_} failed:\n{answer.stderr[-3000:]}")
            ticks = json.loads(answer.stdout.strip().splitlines()[-1])
            for kind in KINDS:
                figures[kind].append(ticks[kind])
            print("ticks", round_, {k: round(v, 3) for k, v in ticks.items()}, flush=True)
        every = round(1 / args.failed_share)
        engine = _engine(state["catalog"])
        with engine.begin() as connection:
            failed = connection.execute(
                text("UPDATE videos SET state = 'failed', error_text = 'bench' "
                     "WHERE id LIKE 'lib-%' AND right(id, 7)::int % :every = 0"),
                {"every": every},
            ).rowcount  # fmt: skip
        engine.dispose()
        for round_ in range(args.rounds):
            took, said = timed([*heimdex, "backfill", "--failed"], env)
            figures["backfill_failed_s"].append(took)
            figures["videos_s"].append(timed([*heimdex, "videos", "--limit", "50"], env)[0])
            print("commands", round_, figures["backfill_failed_s"][-1], figures["videos_s"][-1])
        figures["api_videos_ms"] = videos_page_ms(env, args.requests)
    finally:
        _drop(state["databases"])
    medians = {k: round(statistics.median(v), 3) for k, v in figures.items()}
    print(json.dumps({"failed": failed, "build_s": state["build_s"], **medians}, indent=2))
    print(said.strip())
    save(
        f"million_library_{args.library}",
        {"library": args.library, "failed": failed, "build_s": state["build_s"],
         "runs": figures, "medians": medians},
    )  # fmt: skip


if __name__ == "__main__":
    main()
