"""A burst of uploads: `--files` files dropped under incoming/ at once, on a PostgreSQL Dagster
instance holding `--library` videos, with the real `dagster-daemon` ticking the inbox sensor.

    .venv/bin/python benchmarks/inbox_burst.py --library 100000 --files 10000 \\
        --code old=/tmp/wt-old --code new=.
    .venv/bin/python benchmarks/inbox_burst.py --library 1000000 --keep 100000

With `--keep N` the library's partitions are first retired down to N (`heimdex retire --keep N`,
as a deployment past 100,000 videos runs it).

Runs are queued, not launched (max_concurrent_runs 0): the figure is the sensor's side, every
tick of it from Dagster's own tick records (start to end, the daemon's run creation included),
until every file is registered with its run queued. Each code version gets a fresh library.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

from benchmarks._common import save  # noqa: E402
from benchmarks._runs import heimdex_retire  # noqa: E402
from benchmarks.inbox_ticks import _drop, _engine, build, environment  # noqa: E402

QUEUE_ONLY = (
    "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n"
    "  config:\n    max_concurrent_runs: 0\n"
)


def burst(tree: Path, library: int, files: int, timeout_s: float, keep: int | None = None) -> dict:
    """One code version's burst; its instance on the storage its deploy/dagster.yaml names."""
    pooled = (tree / "heimdex_pipeline" / "pipeline" / "pooled_postgres.py").exists()
    state = build(library, pooled=pooled)
    home = Path(state["home"])
    retired = None
    if keep is not None:
        retired = heimdex_retire(environment(state), keep, tree)
        print("retired", retired, flush=True)
    config = home / "dagster" / "dagster.yaml"
    config.write_text(config.read_text() + QUEUE_ONLY)
    inbox = home / "objects" / "incoming" / "burst"
    inbox.mkdir(parents=True)
    env = environment(state) | {
        "PYTHONPATH": str(tree),
        "HEIMDEX_SENSOR_INTERVAL_S": "5",
        "HEIMDEX_OBJECT_STORE": str(home / "objects"),
    }
    log = open(home / "daemon.log", "w")  # noqa: SIM115 (closed with the daemon)
    daemon_command = Path(sys.executable).parent / "dagster-daemon"
    daemon = subprocess.Popen(
        [str(daemon_command), "run", "-w", str(tree / "workspace.yaml")],
        cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )  # fmt: skip
    import dagster as dg
    from sqlalchemy import text

    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        time.sleep(20)  # the daemon up and its first (empty) ticks done
        for i in range(files):
            (inbox / f"{i:05d}.mp4").write_bytes(b"\0")
        dropped = time.time()
        engine = _engine(state["catalog"])
        queued = registered = 0
        while time.time() - dropped < timeout_s:
            with engine.connect() as connection:
                registered = connection.execute(
                    text("SELECT count(*) FROM videos WHERE store_key LIKE 'incoming/burst/%' "
                         "AND run_key IS NOT NULL")
                ).scalar()  # fmt: skip
            queued = instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
            if registered == files and queued * state_batch(env) >= files:
                break
            time.sleep(2)
        took = time.time() - dropped
        engine.dispose()
        ticks = inbox_ticks(instance, dropped)
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()
        log.close()
        instance.dispose()
        _drop(state["databases"])
    durations = [t["s"] for t in ticks]
    return {
        "pooled_storage": pooled,
        "retired": retired,
        "registered": registered,
        "queued_runs": queued,
        "all_queued_s": round(took, 1),
        "ticks": ticks,
        "ticks_n": len(ticks),
        "tick_max_s": round(max(durations, default=0), 2),
        "tick_median_s": round(statistics.median(durations), 2) if durations else None,
        "failed_ticks": sum(t["status"] == "FAILURE" for t in ticks),
    }


def state_batch(env: dict[str, str]) -> int:
    return int(env.get("HEIMDEX_RUN_BATCH_SIZE", "25"))


def inbox_ticks(instance, since: float) -> list[dict]:
    """The inbox sensor's ticks that started after `since`, oldest first."""
    (state,) = [s for s in instance.all_instigator_state() if s.instigator_name == "inbox_sensor"]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000)
    return [
        {
            "s": round((t.end_timestamp or time.time()) - t.timestamp, 2),
            "status": t.status.value,
            "runs": len(t.run_ids),
        }
        for t in sorted(ticks, key=lambda t: t.timestamp)
        if t.timestamp >= since - 5
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--keep", type=int, default=None, help="retire partitions down to this")
    parser.add_argument("--code", action="append", default=[], help="NAME=TREE, in order")
    args = parser.parse_args()
    codes = [c.split("=", 1) for c in args.code] or [["current", str(ROOT)]]
    results = {}
    for name, tree in codes:
        results[name] = burst(
            Path(tree).resolve(), args.library, args.files, args.timeout, args.keep
        )
        summary = {k: v for k, v in results[name].items() if k != "ticks"}
        print(name, json.dumps(summary), flush=True)
    kept = f"_keep_{args.keep}" if args.keep is not None else ""
    save(
        f"inbox_burst_{args.library}_{args.files}{kept}",
        {"library": args.library, "keep": args.keep, **results},
    )


if __name__ == "__main__":
    main()
