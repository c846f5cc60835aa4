"""Inbox sensor ticks on a PostgreSQL Dagster instance holding a large library, old code against
new, back to back.

    .venv/bin/python benchmarks/inbox_ticks.py --library 100000 --keys 1000 --rounds 3 \\
        --code old=/tmp/wt-old --code new=.

The library (catalog rows and `videos` partitions) is written in batches, as a real library's
history would leave it. Each round, each code version (its tree on PYTHONPATH, in a process of
its own) evaluates the sensor on a fresh page of `--keys` files under incoming/, three ticks:

- `new`: every key is new (registered, partitions and runs planned);
- `uploading`: the same page again once its runs exist (videos still `uploading`);
- `steady`: the same page once every video is indexed (nothing to do).

The order of the versions alternates by round. Figures: the median tick of each kind per version,
and their ratio. Needs PostgreSQL (HEIMDEX_BENCH_POSTGRES, default the test server's URL).
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
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # after PYTHONPATH: the tree measured comes first

from benchmarks._common import save  # noqa: E402

SERVER = os.environ.get(
    "HEIMDEX_BENCH_POSTGRES", "postgresql://heimdex:heimdex@127.0.0.1:5432/heimdex_test"
)
KINDS = ("new", "uploading", "steady")


def _engine(url: str, **kwargs):
    from sqlalchemy import create_engine

    return create_engine(url.replace("postgresql://", "postgresql+psycopg2://"), **kwargs)


def _database(name: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = _engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(SERVER).set(database=name).render_as_string(hide_password=False)


def _drop(names: list[str]) -> None:
    from sqlalchemy import text

    admin = _engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def environment(state: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEIMDEX_", "DAGSTER_"))}
    env.update(
        HEIMDEX_HOME=state["home"],
        DAGSTER_HOME=str(Path(state["home"]) / "dagster"),
        HEIMDEX_DATABASE_URL=state["catalog"],
        HEIMDEX_ASR_MODEL="off",
        HEIMDEX_FACES="off",
        HEIMDEX_CLIP_PRETRAINED="random",
        LANCEDB_LOG="error",
    )
    return env


def build(library: int, pooled: bool = False) -> dict:
    """Fresh databases, a migrated catalog with `library` indexed videos, as many partitions;
    the instance on dagster-postgres, or on Heimdex's pooled storage (`pooled`)."""
    tag = uuid.uuid4().hex[:8]
    names = [f"heimdex_ticks_catalog_{tag}", f"heimdex_ticks_dagster_{tag}"]
    catalog, dagster_url = _database(names[0]), _database(names[1])
    home = Path(tempfile.mkdtemp(prefix="heimdex-ticks-"))
    (home / "dagster").mkdir()
    url = dagster_url.replace("postgresql://", "postgresql+psycopg2://")
    storage = (
        "  custom:\n    module: heimdex_pipeline.pipeline.pooled_postgres\n"
        f"    class: PooledPostgresStorage\n    config:\n      postgres_url: {url}\n"
        "      kept_partitions_def: videos\n"  # as deploy/dagster.yaml has it
        if pooled
        else f"  postgres:\n    postgres_url: {url}\n"
    )
    (home / "dagster" / "dagster.yaml").write_text(
        f"storage:\n{storage}telemetry:\n  enabled: false\n"
    )
    state = {"home": str(home), "catalog": catalog, "databases": names, "library": library}
    os.environ.update(environment(state))
    import dagster as dg
    from sqlalchemy import insert

    from heimdex_pipeline.catalog.database import upgrade
    from heimdex_pipeline.catalog.models import Video, VideoState

    upgrade(catalog)
    started = time.perf_counter()
    engine = _engine(catalog)
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    chunk = 10_000
    for at in range(0, library, chunk):
        ids = [f"lib-{i:07d}" for i in range(at, min(library, at + chunk))]
        with engine.begin() as connection:
            connection.execute(
                insert(Video.__table__),
                [
                    {"id": v, "owner": "local", "source_uri": f"file:///library/{v}.mp4",
                     "title": f"{v}.mp4", "state": VideoState.INDEXED.value}
                    for v in ids
                ],
            )  # fmt: skip
        instance.add_dynamic_partitions("videos", ids)
    state["build_s"] = round(time.perf_counter() - started, 1)
    engine.dispose()
    return state


def measure(state: dict, prefix: str, keys: int) -> dict[str, float]:
    """The three ticks on a fresh page of `keys` files under incoming/<prefix>/ (this process's
    code: whatever tree PYTHONPATH puts first)."""
    import dagster as dg
    from sqlalchemy import update

    from heimdex_pipeline.catalog.models import Video, VideoState
    from heimdex_pipeline.pipeline.definitions import build_definitions
    from heimdex_pipeline.pipeline.sensors.inbox import InboxCursor, build_inbox_sensor
    from heimdex_pipeline.pipeline.tags import INDEX_JOB, RUN_KEY_TAG
    from heimdex_pipeline.settings import load_settings

    settings = load_settings()
    inbox = Path(state["home"]) / "objects" / "incoming" / prefix
    inbox.mkdir(parents=True)
    for i in range(keys):
        (inbox / f"{i:05d}.mp4").write_bytes(b"\0")
    instance = dg.DagsterInstance.from_config(state["home"] + "/dagster")
    resources = build_definitions(settings).resources
    needed = {key: resources[key] for key in ("catalog", "objects", "vectors")}
    sensor = build_inbox_sensor(settings.run_batch_size)
    cursor = InboxCursor(after=f"incoming/{prefix}").dump()

    def tick() -> tuple[float, dg.SensorResult]:
        with dg.build_sensor_context(instance=instance, resources=needed, cursor=cursor) as context:
            began = time.perf_counter()
            result = sensor(context)
            return time.perf_counter() - began, result

    figures = {}
    figures["new"], result = tick()
    for request in result.dynamic_partitions_requests or []:  # what the daemon does next
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    for request in result.run_requests or []:
        instance.add_run(
            dg.DagsterRun(
                job_name=INDEX_JOB,
                status=dg.DagsterRunStatus.STARTED,
                tags={**request.tags, RUN_KEY_TAG: request.run_key},
            )
        )
    figures["new_requests"] = len(result.run_requests or [])
    figures["uploading"], again = tick()
    figures["uploading_requests"] = len(again.run_requests or [])
    engine = _engine(state["catalog"])  # every video of the page indexed, at its version
    with engine.begin() as connection:
        for info in _listing(needed, prefix):
            connection.execute(
                update(Video.__table__)
                .where(Video.__table__.c.store_key == info.key)
                .values(state=VideoState.INDEXED.value, source_version=info.version)
            )
    engine.dispose()
    figures["steady"], steady = tick()
    figures["steady_requests"] = len(steady.run_requests or [])
    import heimdex_pipeline

    assert Path(heimdex_pipeline.__file__).is_relative_to(Path.cwd()), heimdex_pipeline.__file__
    return figures


def _listing(resources: dict, prefix: str):
    return resources["objects"].store().list(f"incoming/{prefix}/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", action="append", default=[], help="NAME=TREE, in order")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # STATE_JSON PREFIX: one process
    args = parser.parse_args()
    if args.measure:
        state_file, prefix = args.measure.split(":", 1)
        figures = measure(json.loads(Path(state_file).read_text()), prefix, args.keys)
        print(json.dumps(figures))
        return
    codes = [c.split("=", 1) for c in args.code] or [["current", str(ROOT)]]
    state = build(args.library)
    state_file = Path(state["home"]) / "state.json"
    state_file.write_text(json.dumps(state))
    print(f"library of {args.library:,} built in {state['build_s']} s", flush=True)
    ticks: dict[str, list[dict]] = {name: [] for name, _ in codes}
    try:
        for round_ in range(args.rounds):
            order = codes if round_ % 2 == 0 else codes[::-1]
            for name, tree in order:
                env = environment(state) | {"PYTHONPATH": str(Path(tree).resolve())}
                answer = subprocess.run(
                    [sys.executable, __file__, "--keys", str(args.keys),
                     "--measure", f"{state_file}:r{round_}-{name}"],
                    env=env, capture_output=True, text=True, cwd=tree,
                )  # fmt: skip
                if answer.returncode:
                    raise SystemExit(f"{name} round {round_} failed:\n{answer.stderr[-3000:]}")
                figures = json.loads(answer.stdout.strip().splitlines()[-1])
                ticks[name].append(figures)
                print(name, round_, {k: round(v, 3) for k, v in figures.items()}, flush=True)
    finally:
        _drop(state["databases"])
    medians = {
        name: {kind: round(statistics.median(t[kind] for t in rows), 3) for kind in KINDS}
        for name, rows in ticks.items()
    }
    print(json.dumps(medians, indent=2))
    save(
        f"inbox_ticks_{args.library}",
        {"library": args.library, "keys": args.keys, "rounds": ticks, "medians": medians,
         "build_s": state["build_s"]},
    )  # fmt: skip


if __name__ == "__main__":
    main()
