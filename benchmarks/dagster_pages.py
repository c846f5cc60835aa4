"""Dagster's own pages and processes on a large library: the `raw_videos` partitions page in
Chromium, the partition health query, the webserver's and the daemon's memory.

    .venv/bin/python benchmarks/dagster_pages.py --library 100000 --library 1000000

Each library is built fresh (`inbox_ticks.build`: catalog rows and `videos` partitions on
Heimdex's pooled PostgreSQL storage), then given a history written in batches as a real one
leaves it: a materialization of each of `--assets` for every video (runless events, one
batch insert per 10,000), and `--failed-share` of the videos failed (failed runs of
`--batch` videos each, every asset planned and none materialized). Then, in order:

- rounds: every partition kept, then, for each `--keep N` (largest first), after `heimdex
  retire --keep N` (the failed videos marked so in the catalog first); each round once for
  each `--health-from` (`kept`: the storage's `kept_partitions_def: videos`, as
  deploy/dagster.yaml has it; `all`: without it, Dagster's own reads of every key), Dagster's
  stored health cache wiped before each, so that each first visit rebuilds it; in each:
- `dagster-webserver` on the workspace, its memory once it answers;
- the partitions page of `raw_videos` in Chromium (first visit, while Dagster's status cache
  is built, then again, then after one new partition: an upload, which changes the id Dagster
  keys that cache by), timed until the partition keys and their health counts show; a
  screenshot to `artifacts/dagster-partitions-<library>[-keep-N].png`;
- the GraphQL partition health of `raw_videos` (what the page asks for), first and warm;
- the webserver's memory after the pages; `dagster-daemon run` for `--daemon-s` seconds (its
  sensors tick on the library) and its memory, parent and children.

Memory is resident set size from /proc (VmRSS now, VmHWM peak), the process and its children.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

from benchmarks._common import save  # noqa: E402
from benchmarks._runs import (  # noqa: E402
    default_signals,
    free_port,
    graphql,
    heimdex_retire,
    wait_until_answers,
)
from benchmarks.inbox_ticks import _drop, _engine, build, environment  # noqa: E402

ARTIFACTS = ROOT / "artifacts"
HEALTH = """
query ($asset: [String!]!) {
  assetNodes(assetKeys: [{path: $asset}]) {
    partitionStats { numMaterialized numFailed numPartitions }
    assetPartitionStatuses {
      ... on DefaultPartitionStatuses { materializedPartitions failedPartitions }
    }
  }
}
"""


def write_history(state: dict, assets: list[str], failed_share: float, batch: int) -> dict:
    """Materializations of `assets` for every video but the failed ones, and failed runs of
    `batch` videos whose assets were planned and never materialized."""
    import dagster as dg
    from dagster._core.events import (
        AssetMaterializationPlannedData,
        DagsterEvent,
        DagsterEventType,
        StepMaterializationData,
    )
    from dagster._core.events.log import EventLogEntry
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

    from heimdex_pipeline.pipeline.tags import INDEX_JOB

    began = time.perf_counter()
    instance = dg.DagsterInstance.from_config(str(Path(state["home"]) / "dagster"))
    every = round(1 / failed_share) if failed_share else 0
    ids = [f"lib-{i:07d}" for i in range(state["library"])]
    failed = [v for i, v in enumerate(ids) if every and i % every == 0]
    lost = set(failed)
    done = [v for v in ids if v not in lost]

    def entry(run_id: str, job: str, event: DagsterEvent) -> EventLogEntry:
        return EventLogEntry(
            error_info=None, level=20, user_message="", run_id=run_id, timestamp=time.time(),
            step_key=None, job_name=job, dagster_event=event,
        )  # fmt: skip

    storage = instance.event_log_storage
    for asset in assets:
        key = dg.AssetKey(asset)
        for at in range(0, len(done), 10_000):
            storage.store_event_batch([
                entry(RUNLESS_RUN_ID, RUNLESS_JOB_NAME, DagsterEvent(
                    event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                    job_name=RUNLESS_JOB_NAME,
                    event_specific_data=StepMaterializationData(
                        dg.AssetMaterialization(asset_key=key, partition=video)
                    ),
                ))
                for video in done[at : at + 10_000]
            ])  # fmt: skip
        print(f"  {asset}: {len(done):,} materializations", flush=True)
    for at in range(0, len(failed), batch):
        videos = failed[at : at + batch]
        run = instance.add_run(
            dg.DagsterRun(
                job_name=INDEX_JOB, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.FAILURE,
                tags={"dagster/asset_partition_range_start": videos[0],
                      "dagster/asset_partition_range_end": videos[-1]},
            )
        )  # fmt: skip
        storage.store_event_batch([
            entry(run.run_id, INDEX_JOB, DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
                job_name=INDEX_JOB,
                event_specific_data=AssetMaterializationPlannedData(
                    dg.AssetKey(asset), partition=video
                ),
            ))
            for asset in assets for video in videos
        ])  # fmt: skip
    instance.dispose()
    return {
        "failed": len(failed),
        "materializations": len(done) * len(assets),
        "history_s": round(time.perf_counter() - began, 1),
    }


def _tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        queue.extend(int(c) for c in children)
    return found


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of the process alone and with its children (now, and peaks summed)."""
    figures = {"self_mb": 0.0, "tree_mb": 0.0, "tree_peak_mb": 0.0}
    for at, member in enumerate(_tree(pid)):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        peak = int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
        if at == 0:
            figures["self_mb"] = rss
        figures["tree_mb"] += rss
        figures["tree_peak_mb"] += peak
    return {k: round(v) for k, v in figures.items()}


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=default_signals, start_new_session=True,
    )  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def health_from(env: dict[str, str], source: str) -> None:
    """The instance's storage reading asset health from the kept partitions (`kept`) or from
    every key (`all`, Dagster's own reads), and its stored health cache wiped."""
    import dagster as dg

    config = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
    lines = [line for line in config.read_text().splitlines() if "kept_partitions_def" not in line]
    if source == "kept":
        at = next(i for i, line in enumerate(lines) if "postgres_url:" in line)
        lines.insert(at + 1, "      kept_partitions_def: videos")
    config.write_text("\n".join(lines) + "\n")
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        keys = instance.get_asset_keys()
        instance.wipe_asset_cached_status(list(keys))
    finally:
        instance.dispose()


def timed_health(port: int) -> tuple[float, dict]:
    began = time.perf_counter()
    answer = graphql(port, HEALTH, {"asset": ["raw_videos"]}, timeout=600)
    took = time.perf_counter() - began
    (node,) = answer["data"]["assetNodes"]
    statuses = node["assetPartitionStatuses"]
    listed = {k: len(v) for k, v in statuses.items()}
    return took, {**node["partitionStats"], **listed}


def pages(port: int, name: str, add_one: Callable[[], None]) -> dict[str, float]:
    """The partitions page of raw_videos, first visit, again, and after one new partition (an
    upload: Dagster's health cache is keyed by every partition key): seconds until the keys
    and their counts show."""
    from playwright.sync_api import expect, sync_playwright

    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("HEIMDEX_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for visit in ("first", "again", "after_one_new"):
                if visit == "after_one_new":
                    add_one()
                began = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/assets/raw_videos?view=partitions")
                # the keys listed and their health counted (the filter's counts)
                expect(page.get_by_text("lib-").first).to_be_visible(timeout=600_000)
                counted = re.compile(r"Materialized \([1-9][\d,]*\)")
                expect(page.get_by_text(counted).first).to_be_visible(timeout=600_000)
                figures[f"partitions_page_{visit}_s"] = round(time.perf_counter() - began, 2)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"dagster-partitions-{name}.png"))
        finally:
            browser.close()
    return figures


def retire(
    state: dict, env: dict[str, str], keep: int, failed: int, every: int, mark: bool
) -> dict:
    """`heimdex retire --keep` as an operator runs it (the catalog first told which failed,
    when `mark`)."""
    from sqlalchemy import text

    if mark:
        engine = _engine(state["catalog"])
        with engine.begin() as connection:
            marked = connection.execute(
                text("UPDATE videos SET state = 'failed' WHERE right(id, 7)::int % :every = 0"),
                {"every": every},
            ).rowcount
        engine.dispose()
        assert marked == failed, (marked, failed)
    return heimdex_retire(env, keep)


def processes(env: dict[str, str], name: str, daemon_s: float) -> dict:
    """A fresh webserver: its memory, the pages, the health query; then the daemon's memory."""
    import dagster as dg

    figures: dict = {}
    webserver = daemon = None
    try:
        port = free_port()
        began = time.perf_counter()
        webserver = _start(
            [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)], env,
        )  # fmt: skip
        wait_until_answers(
            f"http://127.0.0.1:{port}/server_info",
            webserver,
            300,
            "dagster-webserver did not start",
        )
        figures["webserver_start_s"] = round(time.perf_counter() - began, 1)
        time.sleep(5)  # the code location loaded
        figures["webserver_at_start"] = memory_mb(webserver.pid)
        graphql(port, "mutation { setNuxSeen }")
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])

        def add_one() -> None:
            instance.add_dynamic_partitions("videos", [f"lib-upload-{uuid.uuid4().hex[:8]}"])

        figures.update(pages(port, name, add_one))
        instance.dispose()
        first, statuses = timed_health(port)
        again, _ = timed_health(port)
        figures.update(health_s=round(first, 2), health_again_s=round(again, 2), statuses=statuses)
        figures["webserver_after_pages"] = memory_mb(webserver.pid)
        daemon = _start(
            [sys.executable, "-m", "dagster._daemon", "run", "-w", "workspace.yaml"], env
        )
        peak: dict[str, float] = {}
        until = time.perf_counter() + daemon_s
        while time.perf_counter() < until and daemon.poll() is None:
            time.sleep(5)
            now = memory_mb(daemon.pid)
            peak = {k: max(v, peak.get(k, 0)) for k, v in now.items()}
        if daemon.poll() is not None:
            raise SystemExit(f"dagster-daemon exited ({daemon.returncode})")
        figures["daemon"] = peak
    finally:
        for process in (daemon, webserver):
            if process is not None:
                _stop(process)
    return figures


def measure(
    library: int,
    assets: list[str],
    failed_share: float,
    batch: int,
    daemon_s: float,
    keeps: list[int],
    all_kept: bool = True,
    sources: tuple[str, ...] = ("kept",),
) -> dict:
    """One library; its rounds: every partition kept (unless `all_kept` is false), then each
    of `keeps`, largest first, retired down to; each round once per health source."""
    state = build(library, pooled=True)
    print(f"library of {library:,} built in {state['build_s']} s", flush=True)
    figures: dict = {"library": library, "build_s": state["build_s"], "assets": assets}
    env = {**environment(state), "HEIMDEX_RUN_BATCH_SIZE": str(batch)}
    try:
        figures.update(write_history(state, assets, failed_share, batch))
        print(f"  history written in {figures['history_s']} s", flush=True)
        rounds: list[dict] = []

        def each_source(name: str, **round_figures) -> None:
            for source in sources:
                health_from(env, source)
                label = f"{name}-health-{source}"
                rounds.append(
                    {**round_figures, "health_from": source, **processes(env, label, daemon_s)}
                )
                print(f"  {json.dumps(rounds[-1])}", flush=True)

        if all_kept:
            each_source(f"{library}", keep=None)
        for at, keep in enumerate(sorted(keeps, reverse=True)):
            every = round(1 / failed_share)
            retired = retire(state, env, keep, figures["failed"], every, mark=at == 0)
            each_source(f"{library}-keep-{keep}", keep=keep, retired=retired)
        figures["rounds"] = rounds
    finally:
        _drop(state["databases"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=int, action="append")
    parser.add_argument(
        "--assets", default="raw_videos,search_index",
        help="the assets given a materialization per video (comma-separated)",
    )  # fmt: skip
    parser.add_argument("--failed-share", type=float, default=0.01)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--daemon-s", type=float, default=120)
    parser.add_argument(
        "--keep", type=int, action="append", default=[],
        help="a round after `heimdex retire --keep N` (repeatable: largest first)",
    )  # fmt: skip
    parser.add_argument(
        "--no-all-kept", action="store_true", help="skip the round with every partition kept"
    )
    parser.add_argument(
        "--health-from", default="kept",
        help="comma-separated: kept (kept_partitions_def, as deployed), all (Dagster's reads)",
    )  # fmt: skip
    args = parser.parse_args()
    results = [
        measure(
            n,
            args.assets.split(","),
            args.failed_share,
            args.batch,
            args.daemon_s,
            args.keep,
            not args.no_all_kept,
            tuple(args.health_from.split(",")),
        )
        for n in args.library or [100_000]
    ]
    print(json.dumps(results, indent=2))
    save("dagster_pages", {"libraries": results})


if __name__ == "__main__":
    main()
