"""`heimdex backfill --failed` and `heimdex videos` on a PostgreSQL instance holding a large
library with `--failed-share` of it failed, as an operator runs them (each its own process).

    .venv/bin/python benchmarks/backfill_launch.py --library 100000 --failed-share 0.01

The library is written in batches (`inbox_ticks.build`). Figures: wall time of each command,
Python's start included, median of `--repeat`, and the backfill's size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

from benchmarks._common import save  # noqa: E402
from benchmarks.inbox_ticks import _drop, _engine, build, environment  # noqa: E402


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - began, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=int, default=100_000)
    parser.add_argument("--failed-share", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    state = build(args.library, pooled=True)
    env = environment(state)
    from sqlalchemy import text

    every = round(1 / args.failed_share)
    engine = _engine(state["catalog"])
    with engine.begin() as connection:
        failed = connection.execute(
            text("UPDATE videos SET state = 'failed', error_text = 'bench' "
                 "WHERE right(id, 7)::int % :every = 0"),
            {"every": every},
        ).rowcount  # fmt: skip
    engine.dispose()
    heimdex = [sys.executable, "-m", "heimdex_pipeline.cli.main"]
    figures: dict[str, list[float]] = {"backfill_failed_s": [], "videos_s": [], "python_s": []}
    try:
        for _ in range(args.repeat):
            figures["python_s"].append(timed([sys.executable, "-c", "pass"], env)[0])
            took, said = timed([*heimdex, "backfill", "--failed"], env)
            figures["backfill_failed_s"].append(took)
            figures["videos_s"].append(timed([*heimdex, "videos", "--limit", "50"], env)[0])
    finally:
        _drop(state["databases"])
    medians = {k: round(statistics.median(v), 2) for k, v in figures.items()}
    print(json.dumps({"failed": failed, **medians, "said": said.strip()}, indent=2))
    save(
        f"backfill_launch_{args.library}",
        {"library": args.library, "failed": failed, "runs": figures, "medians": medians},
    )


if __name__ == "__main__":
    main()
