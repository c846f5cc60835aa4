"""Soak: many generated videos (and a few bad ones) dropped into `incoming/` on an S3 server while
`dagster dev` runs on a PostgreSQL instance; optionally PostgreSQL restarted while runs are in
flight. Then an audit: the catalog, the objects and the vector table must agree exactly.

    .venv/bin/python benchmarks/soak.py --videos 200 --bad 5           # the README's figures
    .venv/bin/python benchmarks/soak.py --videos 40 --restart-postgres

`heimdex_pipeline_tests/test_soak.py` runs a small count of the same, with the restart.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from benchmarks._common import save
from benchmarks._postgres import private_postgres
from benchmarks._runs import (
    BACKFILL,
    ROOT,
    children,
    dagster_dev,
    descendants,
    free_port,
    graphql,
    heimdex_env,
    prepare_home,
    rss_mb,
    write_short_video,
)

if TYPE_CHECKING:
    import dagster as dg

BAD_INPUTS = {
    "bad-garbage.mp4": b"this is not a video\n" * 200,
    "bad-empty.mp4": b"",
    "bad-truncated.mp4": None,  # the first 3 kB of a good clip
    "bad-text.webm": b"<html>an error page saved as a video</html>\n" * 20,
    "bad-zeros.mkv": bytes(64_000),
}


@dataclass
class SoakResult:
    videos: int
    bad: int
    wall_s: float = 0.0
    runs_launched: int = 0
    sensor_runs: int = 0
    run_retries: int = 0
    reruns: int = 0  # the operator's re-runs (a backfill of the videos still failed)
    outage_reruns: int = 0  # re-runs the failed-runs sensor asked for after an outage
    peak_run_rss_mb: float = 0.0
    indexed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    taken_twice: list[str] = field(default_factory=list)
    never_taken: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    postgres_restarted_at_s: float | None = None
    s3_stopped_at_s: float | None = None
    struck: list[str] = field(default_factory=list)  # good videos whose first run failed
    recovered: dict[str, str | None] = field(default_factory=dict)  # struck run: carried on how
    failed_by_restart: list[str] = field(default_factory=list)  # good videos still failed
    rerun: list[str] = field(default_factory=list)
    run_log: list[str] = field(default_factory=list)  # each run: status, videos, why it ran
    tick_log: list[str] = field(default_factory=list)  # the failure sensors' ticks that acted


def make_videos(folder: Path, count: int, bad: int) -> tuple[list[Path], list[Path]]:
    """`count` short generated clips (1 or 2 cuts, 2 or 3 s) and `bad` broken files."""
    folder.mkdir(parents=True, exist_ok=True)
    good = []
    for number in range(count):
        path = folder / f"soak-{number:04d}.mp4"
        write_short_video(path, 2.0 + number % 2, cuts=1 + number % 2, seed=number, size=(160, 120))
        good.append(path)
    broken = []
    for name, data in list(BAD_INPUTS.items())[:bad]:
        path = folder / name
        path.write_bytes(data if data is not None else good[0].read_bytes()[:3000])
        broken.append(path)
    return good, broken


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _run_tree_peak(root: int, peak: dict[str, float], stop: threading.Event) -> None:
    """The largest resident set of one run: under `dagster dev` the code location's gRPC server
    starts each run in a spawned process, with the run's CLIP worker under it."""
    while not stop.wait(0.5):
        for server in descendants(root):
            if b"grpc" not in _cmdline(server):
                continue
            for run in children(server):
                if b"spawn_main" in _cmdline(run):
                    tree = {run} | descendants(run)
                    peak["mb"] = max(peak["mb"], sum(rss_mb(pid) for pid in tree))


def audit(settings) -> list[str]:
    """Where the catalog, the objects and the vector table disagree (empty: they agree)."""
    from sqlalchemy import select

    from heimdex_pipeline.catalog.models import Scene, Video, VideoState
    from heimdex_pipeline.stores import open_stores
    from heimdex_pipeline.stores.keys import DERIVED_PREFIXES

    stores = open_stores(settings)
    problems = []
    with stores.catalog.session() as session:
        videos = {v.id: v.state for v in session.scalars(select(Video))}
        scenes: dict[str, set[str]] = {}
        for scene in session.scalars(select(Scene)):
            scenes.setdefault(scene.video_id, set()).add(scene.id)
    objects: dict[tuple[str, str], set[str]] = {}
    for prefix in DERIVED_PREFIXES:
        for info in stores.objects.list(f"{prefix}/"):
            video_id, name = info.key.split("/")[1], info.key.split("/")[-1]
            objects.setdefault((prefix, video_id), set()).add(name.rsplit(".", 1)[0])
    rows: dict[str, list[str]] = {}
    for name in stores.vectors.scenes_tables():
        table = stores.vectors.db.open_table(name)
        for row in table.search().select(["scene_id", "video_id"]).limit(None).to_list():
            rows.setdefault(row["video_id"], []).append(row["scene_id"])
    for video_id, state in videos.items():
        mine = scenes.get(video_id, set())
        if state is VideoState.INDEXED:
            if not mine:
                problems.append(f"{video_id}: indexed with no scenes")
            for prefix in ("sidecars", "thumbnails"):
                if objects.get((prefix, video_id), set()) != mine:
                    problems.append(f"{video_id}: {prefix} do not match its scenes")
            stored = rows.get(video_id, [])
            if sorted(stored) != sorted(mine):
                problems.append(f"{video_id}: {len(stored)} vector rows for {len(mine)} scenes")
        else:
            leftovers = [p for p in DERIVED_PREFIXES if (p, video_id) in objects]
            if mine or leftovers or rows.get(video_id):
                problems.append(f"{video_id} ({state.value}): outputs left: {leftovers}")
    strangers = {v for _, v in objects} | set(rows) | set(scenes)
    problems += [f"{v}: outputs of an unknown video" for v in sorted(strangers - set(videos))]
    return problems


def _describe_run(instance, run) -> str:
    """One line: the run, its status and videos, why it ran, and what failed in it."""
    from heimdex_pipeline.pipeline.runs import run_errors, run_videos
    from heimdex_pipeline.pipeline.tags import ATTEMPT_TAG, HANDLED_TAG, WILL_RETRY_TAG

    logged = (
        "dagster/sensor_name",
        ATTEMPT_TAG,
        "dagster/failure_reason",
        WILL_RETRY_TAG,
        "dagster/parent_run_id",
        HANDLED_TAG,
    )
    ids = run_videos(instance, run)
    span = f" ({ids[0]}..{ids[-1]})" if ids else ""
    line = f"{run.run_id[:8]} {run.status.value} {len(ids)} videos{span}"
    line += f" key={run.tags.get('dagster/run_key', '-')}"
    line += "".join(f" {k}={run.tags[k]}" for k in logged if k in run.tags)
    if run.status.value == "FAILURE":
        line += f" errors: {run_errors(instance, run.run_id)[:300]}"
    return line


def _tick_log(instance) -> list[str]:
    """The ticks of the sensors that act on failed runs and that did not skip: when, how they
    ended, the runs they asked for (by key) and made, and their error's first line."""
    from dagster._core.scheduler.instigation import TickStatus

    lines = []
    for state in instance.all_instigator_state():
        if state.instigator_name in ("inbox_sensor", "library_refresh"):
            continue
        for tick in reversed(instance.get_ticks(state.instigator_origin_id, state.selector_id)):
            if tick.status is TickStatus.SKIPPED:
                continue
            error = (tick.error.message.splitlines() or [""])[0] if tick.error else ""
            lines.append(
                f"{state.instigator_name} {time.strftime('%H:%M:%S', time.gmtime(tick.timestamp))}"
                f" {tick.status.value} keys={list(tick.run_keys)} runs="
                f"{[r[:8] for r in tick.run_ids]} {error[:300]}"
            )
    return lines


def _struck(instance, run_id: str, bad_ids: set[str]) -> bool:
    """Whether a failed run failed for more than its bad input: a step crashed (good input never
    crashes a step), or the run's verdict failed a good video."""
    import dagster as dg

    records = instance.get_records_for_run(
        run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RESOURCE_INIT_FAILURE},
    ).records
    if not records:  # the run itself crashed (its events could not be written, say)
        return True
    for record in records:
        verdict = record.event_log_entry.dagster_event.event_specific_data.user_failure_data
        if verdict is None:
            return True
        failed = verdict.metadata.get("failed_videos")
        if failed is not None and set(failed.value) - bad_ids:
            return True
    return False


def soak(
    videos: int,
    bad: int,
    clip_model: str,
    clip_pretrained: str,
    batch_size: int = 25,
    restart_postgres: bool = False,
    step_retries: int = 3,
    postgres_down_s: float = 0.0,
    strike_at_step: str | None = None,
    s3_outage_s: float = 0.0,
    while_up: Callable[[int, dg.DagsterInstance], None] | None = None,
    timeout_s: float = 3600,
    workdir: Path | None = None,
    sensor_interval_s: int = 30,
) -> SoakResult:
    import dagster as dg
    from moto.server import ThreadedMotoServer

    from heimdex_pipeline.catalog.models import VideoState
    from heimdex_pipeline.catalog.video_ids import video_id_for
    from heimdex_pipeline.catalog.videos import videos_by_id
    from heimdex_pipeline.pipeline.runs import run_videos
    from heimdex_pipeline.pipeline.tags import ATTEMPT_TAG, HANDLED_TAG, RERUN_OF_TAG
    from heimdex_pipeline.settings import load_settings
    from heimdex_pipeline.stores import open_stores

    result = SoakResult(videos=videos, bad=bad)
    work = Path(workdir or tempfile.mkdtemp(prefix="heimdex-soak-"))
    good, broken = make_videos(work / "videos", videos, bad)
    s3_port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3.start()
    servers = [s3]  # the S3 server now running (a new one after an outage, on the same port)
    environment = None
    try:
        with private_postgres() as pg:
            home = work / "home"
            instance_pg = {
                "HEIMDEX_DAGSTER_PG_HOST": "127.0.0.1",
                "HEIMDEX_DAGSTER_PG_PORT": str(pg.port),
                "HEIMDEX_DAGSTER_PG_USER": "postgres",
                "HEIMDEX_DAGSTER_PG_PASSWORD": "",
                "HEIMDEX_DAGSTER_PG_DB": "dagster",
            }
            pg.create_database("dagster")
            env = heimdex_env(
                home,
                HEIMDEX_DATABASE_URL=pg.create_database("heimdex"),
                HEIMDEX_OBJECT_STORE="s3://soak/objects",
                HEIMDEX_LANCEDB_URI="s3://soak/lancedb",
                HEIMDEX_S3_ENDPOINT=f"127.0.0.1:{s3_port}",
                HEIMDEX_S3_ACCESS_KEY="soak",
                HEIMDEX_S3_SECRET_KEY="soak-secret",
                HEIMDEX_S3_SECURE="false",
                HEIMDEX_CLIP_MODEL=clip_model,
                HEIMDEX_CLIP_PRETRAINED=clip_pretrained,
                HEIMDEX_RUN_BATCH_SIZE=str(batch_size),
                HEIMDEX_STEP_RETRIES=str(step_retries),
                HEIMDEX_STEP_RETRY_DELAY_S="2",
                HEIMDEX_SENSOR_INTERVAL_S=str(sensor_interval_s),
                **instance_pg,
            )
            # The instance's dagster.yaml reads them: this process has them for the soak only.
            environment = mock.patch.dict(os.environ, instance_pg)
            environment.start()
            prepare_home(home, env, (ROOT / "deploy" / "dagster.yaml").read_text())
            settings = load_settings({k: v for k, v in env.items() if k.startswith("HEIMDEX_")})
            stores = open_stores(settings)
            instance = dg.DagsterInstance.from_config(str(home / "dagster"))
            ids = {}
            with dagster_dev(env, work / "dagster-dev.log") as dev:
                peak, stop = {"mb": 0.0}, threading.Event()
                threading.Thread(
                    target=_run_tree_peak, args=(dev.pid, peak, stop), daemon=True
                ).start()
                for path in [*good, *broken]:
                    key = f"incoming/{path.name}"
                    stores.objects.put_file(key, path)
                    ids[video_id_for(stores.objects.uri(key))] = path
                dropped = time.time()
                if (restart_postgres or s3_outage_s) and strike_at_step:
                    _wait_for_step_start(instance, strike_at_step, dropped + timeout_s)
                elif restart_postgres or s3_outage_s:
                    while time.time() - dropped < timeout_s:
                        started = instance.get_runs(
                            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
                        )
                        if started:
                            time.sleep(3)  # well inside the first run's steps
                            break
                        time.sleep(0.5)
                if restart_postgres:
                    pg.restart(postgres_down_s)
                    result.postgres_restarted_at_s = round(time.time() - dropped, 1)
                if s3_outage_s:
                    servers[-1].stop()  # objects stay: moto keeps them in this process
                    result.s3_stopped_at_s = round(time.time() - dropped, 1)
                    time.sleep(s3_outage_s)
                    servers.append(
                        ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
                    )
                    servers[-1].start()

                def settled() -> bool:
                    with stores.catalog.session() as session:
                        rows = videos_by_id(session, list(ids))
                    if len(rows) < len(ids):
                        return False
                    if any(
                        r.state not in (VideoState.INDEXED, VideoState.FAILED)
                        for r in rows.values()
                    ):
                        return False
                    busy = instance.get_runs(
                        filters=dg.RunsFilter(
                            statuses=[
                                dg.DagsterRunStatus.QUEUED,
                                dg.DagsterRunStatus.NOT_STARTED,
                                dg.DagsterRunStatus.STARTING,
                                dg.DagsterRunStatus.STARTED,
                            ]
                        )
                    )
                    if busy:
                        return False
                    # a failed run is settled once the failed-runs sensor dealt with its videos
                    # (marked them failed, or queued a re-run after an outage)
                    ended = instance.get_runs(
                        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])
                    )
                    return all(HANDLED_TAG in r.tags for r in ended)

                while not settled():
                    if time.time() - dropped > timeout_s:
                        raise TimeoutError(f"the soak did not settle in {timeout_s} s")
                    time.sleep(2)
                result.wall_s = round(time.time() - dropped, 1)

                bad_ids = {video_id_for(stores.objects.uri(f"incoming/{p.name}")) for p in broken}
                with stores.catalog.session() as session:
                    rows = videos_by_id(session, list(ids))
                    failed = sorted(v for v, r in rows.items() if r.state is VideoState.FAILED)
                result.failed_by_restart = [v for v in failed if v not in bad_ids]
                if result.failed_by_restart:
                    # what an operator does after an outage: run every failed video again (bad
                    # input fails again, naming itself); the harness does not pick the good ones
                    result.rerun = failed
                    answer = graphql(dev.port, BACKFILL, {"partitions": failed})
                    answer = answer["data"]["launchPartitionBackfill"]
                    assert answer["__typename"] == "LaunchBackfillSuccess", answer
                    # the daemon launches the backfill's runs later: until then nothing is busy
                    backfill_id = answer["backfillId"]
                    while instance.get_backfill(backfill_id).status.value == "REQUESTED":
                        if time.time() - dropped > timeout_s:
                            raise TimeoutError("the re-run was never launched")
                        time.sleep(1)
                    while not settled():
                        if time.time() - dropped > timeout_s:
                            raise TimeoutError("the re-run did not settle")
                        time.sleep(2)
                stop.set()
                if while_up is not None:  # e.g. look at the UI while dagster dev still serves
                    while_up(dev.port, instance)

            runs = instance.get_runs()
            result.runs_launched = len(runs)
            sensor_runs = [
                r for r in runs
                if r.tags.get("dagster/sensor_name") == "inbox_sensor"
                and "dagster/parent_run_id" not in r.tags
            ]  # fmt: skip
            result.sensor_runs = len(sensor_runs)
            result.run_retries = sum("dagster/parent_run_id" in r.tags for r in runs)
            result.reruns = sum("dagster/backfill" in r.tags for r in runs)
            result.run_log = [
                _describe_run(instance, r)
                for r in sorted(runs, key=lambda r: r.tags.get("dagster/run_key", ""))
            ]
            result.tick_log = _tick_log(instance)
            result.outage_reruns = sum(ATTEMPT_TAG in r.tags for r in runs)
            # the runs that take videos: the inbox's and the failed-runs sensor's re-runs (a
            # Dagster run retry carries on its failed run)
            takers = [r for r in runs if r in sensor_runs or ATTEMPT_TAG in r.tags]
            # struck: failed for more than bad input, or a bad file's failure the failed-runs
            # sensor read as the outage's (its step met the restart: CI saw bad-garbage re-run
            # once by an outage re-run, then fail naming itself), so re-run under RERUN_OF_TAG
            rerun_of = {r.tags.get(RERUN_OF_TAG) for r in runs}
            struck_runs = {
                r.run_id
                for r in takers
                if r.status is dg.DagsterRunStatus.FAILURE
                and (r.run_id in rerun_of or _struck(instance, r.run_id, bad_ids))
            }
            struck = {v for r in takers if r.run_id in struck_runs for v in run_videos(instance, r)}
            result.struck = sorted(struck - bad_ids)
            # how each struck run was carried on: Dagster's run retry, or a sensor's re-run
            result.recovered = {
                run_id[:8]: "run retry"
                if any(r.tags.get("dagster/parent_run_id") == run_id for r in runs)
                else "outage re-run"
                if any(r.tags.get(RERUN_OF_TAG) == run_id for r in runs)
                else None
                for run_id in struck_runs
            }
            taken: dict[str, int] = {}
            for run in takers:
                if run.run_id not in struck_runs:
                    for video_id in run_videos(instance, run):
                        taken[video_id] = taken.get(video_id, 0) + 1
            result.taken_twice = sorted(v for v, n in taken.items() if n > 1)
            inbox_took = {v for r in sensor_runs for v in run_videos(instance, r)}
            result.never_taken = sorted(set(ids) - inbox_took)
            with stores.catalog.session() as session:
                rows = videos_by_id(session, list(ids))
            result.indexed = sum(r.state is VideoState.INDEXED for r in rows.values())
            result.failed = {
                ids[v].name: r.error_text or ""
                for v, r in rows.items()
                if r.state is VideoState.FAILED
            }
            result.peak_run_rss_mb = round(peak["mb"])
            result.mismatches = audit(settings)
            instance.dispose()
    finally:
        if environment is not None:
            environment.stop()
        servers[-1].stop()
    return result


def _wait_for_step_start(instance, step_key: str, deadline: float) -> None:
    """Until a running run's `step_key` has started (its STEP_START is in the event log)."""
    import dagster as dg

    while time.time() < deadline:
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            records = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
            if any(r.event_log_entry.step_key == step_key for r in records):
                return
        time.sleep(0.2)
    raise TimeoutError(f"no run reached {step_key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--bad", type=int, default=5)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--restart-postgres", action="store_true")
    parser.add_argument("--step-retries", type=int, default=3)
    parser.add_argument("--s3-outage-s", type=float, default=0.0)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="random")
    args = parser.parse_args()
    started = time.time()
    result = soak(  # by name: s3_outage_s once went to postgres_down_s by position
        args.videos,
        args.bad,
        clip_model=args.model,
        clip_pretrained=args.pretrained,
        batch_size=args.batch,
        restart_postgres=args.restart_postgres,
        step_retries=args.step_retries,
        s3_outage_s=args.s3_outage_s,
    )
    figures = {**result.__dict__, "total_s": round(time.time() - started, 1)}
    print(json.dumps(figures, indent=2))
    save(f"soak-{args.videos}", figures)


if __name__ == "__main__":
    main()
