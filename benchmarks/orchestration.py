"""What the orchestration costs: `heimdex index` against a plain script, the sensor path under
`dagster dev`, backfills by batch size, and one inbox-sensor tick against the inbox's size.

    .venv/bin/python benchmarks/orchestration.py index [--repeats 3]
    .venv/bin/python benchmarks/orchestration.py sensor
    .venv/bin/python benchmarks/orchestration.py backfill [--videos 100] [--batches 1 10 50]
    .venv/bin/python benchmarks/orchestration.py tick [--counts 100 10000]

Everything uses real-size ViT-B-32 with random weights (speed only) on this machine's CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from _common import clips, sample_videos, save
from _runs import (
    BACKFILL,
    PYTHON,
    ROOT,
    dagster_dev,
    descendants,
    graphql,
    heimdex_env,
    prepare_home,
    rss_peak_mb,
    run_figures,
    write_short_video,
)

SIX = ["bikes.mp4", "counter.mp4", "fades.mp4", "testvideo.mp4", "chaplin.mp4", "cockatoo.mp4"]


def instance_at(home: Path):
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))


def peer(paths: list[Path]) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [PYTHON, str(ROOT / "benchmarks" / "script_peer.py"), out, *map(str, paths)],
            check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - started


def heimdex_index(paths: list[Path]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        env = heimdex_env(home)
        started = time.perf_counter()
        result = subprocess.run(
            [PYTHON, "-m", "heimdex_pipeline.cli.main", "index", *map(str, paths)],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-3000:])
        instance = instance_at(home)
        figures = run_figures(instance, instance.get_runs())
        instance.dispose()
        return {"wall_s": round(wall, 2), **{k: v for k, v in figures.items() if k != "wall_s"}}


def bench_index(repeats: int) -> dict:
    folder = sample_videos()
    paths = [folder / name for name in clips(folder)]
    rows = []
    for number in range(repeats):  # alternate, so both see the same machine
        script_s = peer(paths)
        ours = heimdex_index(paths)
        overhead = ours["wall_s"] - ours["compute_s"]
        rows.append({"script_s": round(script_s, 2), **ours, "overhead_s": round(overhead, 2)})
        print(f"run {number + 1}: {rows[-1]}", flush=True)
    median = {k: statistics.median(r[k] for r in rows) for k in ("script_s", "wall_s", "compute_s")}
    ratios = [r["wall_s"] / r["script_s"] for r in rows]
    shares = [r["overhead_s"] / r["wall_s"] for r in rows]
    return {
        "clips": len(paths),
        "runs": rows,
        "median": median,
        "ratio_median": round(statistics.median(ratios), 3),
        "overhead_share_median": round(statistics.median(shares), 3),
    }


def bench_sensor() -> dict:
    folder = sample_videos()
    paths = [folder / name for name in SIX]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = heimdex_env(home)
        prepare_home(home, env)
        incoming = home / "objects" / "incoming"
        incoming.mkdir(parents=True)
        with dagster_dev(env, Path(tmp) / "dagster-dev.log"):
            time.sleep(5)
            for path in paths:  # upload elsewhere, then move in: the documented protocol
                staged = home / "objects" / f".staging-{path.name}"
                shutil.copyfile(path, staged)
                staged.rename(incoming / path.name)
            instance = instance_at(home)
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                runs = instance.get_runs()
                if runs and all(run.is_finished for run in runs) and _indexed(env) == len(paths):
                    break
                time.sleep(2)
            figures = run_figures(instance, instance.get_runs())
            instance.dispose()
    script_s = peer(paths)
    return {
        "clips": SIX,
        **figures,
        "script_s": round(script_s, 2),
        "ratio": round(figures["wall_s"] / script_s, 3) if figures["wall_s"] else None,
    }


def _indexed(env: dict[str, str]) -> int:
    result = subprocess.run(
        [PYTHON, "-m", "heimdex_pipeline.cli.main", "videos", "--json", "--limit", "1000"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        return 0
    import json

    return sum(v["state"] == "indexed" for v in json.loads(result.stdout)["videos"])


# A backfill of the index_video job over every partition (what its Partitions page launches):
# Dagster splits it by the chain's BackfillPolicy into ranged runs of index_video.
def _pg_database(name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(os.environ.get("HEIMDEX_TEST_DATABASE_URL") or
                      "postgresql://heimdex:heimdex@127.0.0.1:5432/heimdex_test")  # fmt: skip
    admin = create_engine(
        server.set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def _register(env: dict[str, str], videos: list[Path]) -> list[str]:
    """Catalog rows and partitions for local files, as `heimdex index` would make them."""
    from heimdex_pipeline.catalog.video_ids import video_id_for
    from heimdex_pipeline.catalog.videos import register_video
    from heimdex_pipeline.library.sources import source_uri_of
    from heimdex_pipeline.settings import load_settings
    from heimdex_pipeline.stores import open_stores

    settings = load_settings(env)
    stores = open_stores(settings)
    ids = []
    with stores.catalog.session() as session:
        for path in videos:
            uri = source_uri_of(path)
            ids.append(video_id_for(uri))
            register_video(session, ids[-1], uri, path.name, owner="local")
    instance = instance_at(Path(env["HEIMDEX_HOME"]))
    instance.add_dynamic_partitions("videos", ids)
    instance.dispose()
    return ids


def bench_backfill(count: int, batches: list[int]) -> dict:
    from sqlalchemy.engine import make_url

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        videos = []
        for number in range(count):
            path = folder / f"generated-{number:03d}.mp4"
            write_short_video(path, seconds=2.0 + (number % 3), cuts=1 + number % 2, seed=number)
            videos.append(path)
        for batch in batches:
            home = Path(tmp) / f"home-{batch}"
            catalog = _pg_database(f"heimdex_bench_catalog_{batch}")
            instance_db = make_url(_pg_database(f"heimdex_bench_dagster_{batch}"))
            env = heimdex_env(
                home,
                HEIMDEX_DATABASE_URL=catalog,
                HEIMDEX_RUN_BATCH_SIZE=str(batch),
                HEIMDEX_DAGSTER_PG_HOST=instance_db.host or "127.0.0.1",
                HEIMDEX_DAGSTER_PG_PORT=str(instance_db.port or 5432),
                HEIMDEX_DAGSTER_PG_USER=instance_db.username or "heimdex",
                HEIMDEX_DAGSTER_PG_PASSWORD=instance_db.password or "",
                HEIMDEX_DAGSTER_PG_DB=instance_db.database,
            )
            os.environ.update({k: v for k, v in env.items() if k.startswith("HEIMDEX_DAGSTER_PG")})
            prepare_home(home, env, (ROOT / "deploy" / "dagster.yaml").read_text())
            ids = _register(env, videos)
            with dagster_dev(env, Path(tmp) / f"dagster-dev-{batch}.log") as dev:
                port = dev.port
                peak, stop = {"mb": 0.0}, threading.Event()
                watcher = threading.Thread(
                    target=_watch_memory, args=(dev.pid, peak, stop), daemon=True
                )
                watcher.start()
                started = time.time()
                answer = graphql(port, BACKFILL, {"partitions": ids})
                answer = answer["data"]["launchPartitionBackfill"]
                assert answer["__typename"] == "LaunchBackfillSuccess", answer
                instance = instance_at(home)
                backfill_id = answer["backfillId"]
                while time.time() - started < 3600:
                    backfill = instance.get_backfill(backfill_id)
                    if backfill.status.value not in ("REQUESTED", "CANCELING"):
                        runs = instance.get_runs(
                            filters=__import__("dagster").RunsFilter(
                                tags={"dagster/backfill": backfill_id}
                            )
                        )
                        if all(run.is_finished for run in runs):
                            break
                    time.sleep(2)
                stop.set()
                runs = instance.get_runs(
                    filters=__import__("dagster").RunsFilter(tags={"dagster/backfill": backfill_id})
                )
                figures = run_figures(instance, runs)
                wall = max(instance.get_run_record_by_id(r.run_id).end_time for r in runs) - started
                instance.dispose()
            row = {
                "batch_size": batch,
                "videos": count,
                "runs_launched": len(runs),
                "jobs": sorted({run.job_name for run in runs}),
                "backfill_status": backfill.status.value,
                "wall_s": round(wall, 1),
                "compute_s": figures["compute_s"],
                "overhead_per_video_s": round((wall - figures["compute_s"]) / count, 3),
                "peak_rss_mb": round(peak["mb"]),
                "statuses": figures["statuses"],
            }
            print(row, flush=True)
            results.append(row)
    return {"rows": results}


def _watch_memory(root: int, peak: dict[str, float], stop: threading.Event) -> None:
    """The largest resident set of any process under `root` (run workers, CLIP workers)."""
    while not stop.wait(0.5):
        peak["mb"] = max(peak["mb"], rss_peak_mb(descendants(root)))


def bench_tick(counts: list[int]) -> dict:
    import dagster as dg
    from _runs import free_port
    from moto.server import ThreadedMotoServer

    from heimdex_pipeline.catalog.database import upgrade
    from heimdex_pipeline.catalog.models import Video, VideoState
    from heimdex_pipeline.catalog.video_ids import video_id_for
    from heimdex_pipeline.pipeline.definitions import build_definitions
    from heimdex_pipeline.pipeline.sensors.inbox import (
        KEYS_PER_TICK,
        InboxCursor,
        build_inbox_sensor,
    )
    from heimdex_pipeline.settings import load_settings
    from heimdex_pipeline.stores import open_stores

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    rows = []
    try:
        for count in counts:
            with tempfile.TemporaryDirectory() as tmp:
                settings = load_settings({
                    "HEIMDEX_HOME": tmp, "HEIMDEX_OBJECT_STORE": f"s3://tick-{count}/objects",
                    "HEIMDEX_S3_ENDPOINT": f"127.0.0.1:{port}", "HEIMDEX_S3_ACCESS_KEY": "k",
                    "HEIMDEX_S3_SECRET_KEY": "s", "HEIMDEX_S3_SECURE": "false",
                })  # fmt: skip
                upgrade(settings.database_url)
                stores = open_stores(settings)
                for number in range(count):
                    stores.objects.put_bytes(f"incoming/clip-{number:06d}.mp4", b"x")
                instance = dg.DagsterInstance.ephemeral()
                ids = []
                with stores.catalog.session() as session:
                    for info in stores.objects.list("incoming/"):
                        uri = stores.objects.uri(info.key)
                        ids.append(video_id_for(uri))
                        session.add(Video(id=ids[-1], owner="local", source_uri=uri, title=info.key,
                                          store_key=info.key, source_version=info.version,
                                          state=VideoState.INDEXED))  # fmt: skip
                instance.add_dynamic_partitions("videos", ids)
                resources = build_definitions(settings).resources
                needed = {k: resources[k] for k in ("catalog", "objects", "vectors")}
                sensor = build_inbox_sensor(settings.run_batch_size)
                cursor, times, listing = None, [], []
                for _ in range(7):
                    after = InboxCursor.parse(cursor).after
                    started = time.perf_counter()  # the S3 server's part: one LIST request
                    stores.objects.list_page("incoming/", KEYS_PER_TICK, start_after=after)
                    listing.append(time.perf_counter() - started)
                    with dg.build_sensor_context(
                        instance=instance, resources=needed, cursor=cursor
                    ) as context:
                        started = time.perf_counter()
                        result = sensor(context)
                        times.append(time.perf_counter() - started)
                    assert not result.run_requests
                    cursor = result.cursor
                own = [t - s for t, s in zip(times, listing, strict=True)]
                rows.append({
                    "objects_in_incoming": count,
                    "keys_per_tick": min(count, KEYS_PER_TICK),
                    "tick_ms_median": round(statistics.median(times[1:]) * 1000, 1),
                    "tick_ms_max": round(max(times[1:]) * 1000, 1),
                    "list_request_ms_median": round(statistics.median(listing[1:]) * 1000, 1),
                    "heimdex_ms_median": round(statistics.median(own[1:]) * 1000, 1),
                })  # fmt: skip
                print(rows[-1], flush=True)
    finally:
        server.stop()
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="what", required=True)
    commands.add_parser("index").add_argument("--repeats", type=int, default=3)
    commands.add_parser("sensor")
    backfill = commands.add_parser("backfill")
    backfill.add_argument("--videos", type=int, default=100)
    backfill.add_argument("--batches", type=int, nargs="+", default=[1, 10, 50])
    commands.add_parser("tick").add_argument("--counts", type=int, nargs="+", default=[100, 10_000])
    args = parser.parse_args()
    if args.what == "index":
        result = bench_index(args.repeats)
    elif args.what == "sensor":
        result = bench_sensor()
    elif args.what == "backfill":
        result = bench_backfill(args.videos, args.batches)
    else:
        result = bench_tick(args.counts)
    print(result)
    save(f"orchestration_{args.what}", result)


if __name__ == "__main__":
    main()
