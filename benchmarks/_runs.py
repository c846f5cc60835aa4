"""Helpers for the orchestration benchmarks: homes, `dagster dev`, run records, short videos."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def heimdex_retire(env: dict[str, str], keep: int, tree: Path = ROOT) -> dict:
    """`heimdex retire --keep N --json` as an operator runs it (the code of `tree`): what it
    said, with the seconds it took."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", "retire", "--keep", str(keep),
         "--json"], env=env | {"PYTHONPATH": str(tree)}, cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"heimdex retire failed:\n{done.stderr[-2000:]}")
    return {"retire_s": round(time.perf_counter() - began, 1), **json.loads(done.stdout)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def heimdex_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEIMDEX_", "DAGSTER_"))}
    env.update(
        HEIMDEX_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        HEIMDEX_CLIP_PRETRAINED="random",
        # the pictures' chain, as the figures before speech measured it (and the plain-script
        # peer does); a benchmark of speech passes HEIMDEX_ASR_MODEL itself
        HEIMDEX_ASR_MODEL="off",
        HEIMDEX_FACES="off",
        LANCEDB_LOG="error",
    )
    env.update(extra)
    return env


def prepare_home(home: Path, env: dict[str, str], instance_yaml: str | None = None) -> None:
    """A fresh home: the catalog migrated, DAGSTER_HOME with its dagster.yaml."""
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text(
        instance_yaml or "telemetry:\n  enabled: false\n"
    )
    subprocess.run(
        [PYTHON, "-m", "heimdex_pipeline.cli.main", "db", "upgrade"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip


def default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


BACKFILL = """
mutation ($partitions: [String!]!) {
  launchPartitionBackfill(backfillParams: {partitionNames: $partitions, selector: {
      partitionSetName: "index_video_partition_set",
      repositorySelector: {repositoryName: "__repository__",
                           repositoryLocationName: "heimdex_pipeline"}}}) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


def wait_until_answers(
    url: str, process: subprocess.Popen, timeout_s: float, failure: str, poll_s: float = 0.5
) -> None:
    """Until `url` answers (any HTTP status: a 503 is an answer); RuntimeError(`failure`) when
    `process` exits first or `timeout_s` pass."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(failure) from None
            time.sleep(poll_s)


class DevServer(NamedTuple):
    port: int
    pid: int  # the `dagster dev` process; runs and servers are its descendants


@contextmanager
def dagster_dev(env: dict[str, str], log: Path) -> Iterator[DevServer]:
    """`dagster dev` from the repository root."""
    port = free_port()
    with open(log, "w") as output:
        process = subprocess.Popen(
            [PYTHON, "-m", "dagster", "dev", "--port", str(port), "--host", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            preexec_fn=default_signals, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until_answers(
                f"http://127.0.0.1:{port}/server_info", process, 180,
                f"dagster dev did not start, see {log}", poll_s=1,
            )  # fmt: skip
            yield DevServer(port, process.pid)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def run_figures(instance, runs) -> dict:
    """Wall from the first run's start to the last run's end, and the compute the steps did."""
    records = [instance.get_run_record_by_id(run.run_id) for run in runs]
    starts = [r.start_time for r in records if r.start_time]
    ends = [r.end_time for r in records if r.end_time]
    compute = 0.0
    for run in runs:
        for record in instance.get_records_for_run(
            run.run_id, of_type={__import__("dagster").DagsterEventType.ASSET_MATERIALIZATION}
        ).records:
            metadata = record.event_log_entry.dagster_event.step_materialization_data
            value = metadata.materialization.metadata.get("seconds")
            compute += float(value.value) if value is not None else 0.0
    return {
        "runs": len(runs),
        "wall_s": round(max(ends) - min(starts), 2) if starts and ends else None,
        "compute_s": round(compute, 2),
        "statuses": sorted({r.dagster_run.status.value for r in records}),
    }


def write_short_video(path: Path, seconds: float, cuts: int, seed: int, size=(320, 240)) -> None:
    """A short H.264 clip of `cuts` + 1 shots: moving shapes on flat colours, 25 fps."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * 25)
    shot_len = frames // (cuts + 1)
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        background = rng.integers(0, 255, 3)
        for number in range(frames):
            if number and number % shot_len == 0:
                background = rng.integers(0, 255, 3)
            image = np.empty((height, width, 3), np.uint8)
            image[:] = background
            x = (number * 7) % (width - 40)
            image[100:140, x : x + 40] = 255 - background
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def rss_mb(pid: int) -> float:
    """The process's resident set now (MB); 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return sum(
        int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")
    )


def rss_peak_mb(pids: set[int]) -> float:
    """The largest resident set among these processes, now (MB)."""
    return max((rss_mb(pid) for pid in pids), default=0.0)


def children(pid: int) -> set[int]:
    """The process's direct children (any of its threads may have forked them)."""
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found |= {int(c) for c in (task / "children").read_text().split()}
    except OSError:
        pass
    return found


def descendants(pid: int) -> set[int]:
    found, frontier = set(), [pid]
    while frontier:
        for child in children(frontier.pop()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def python_path() -> str:
    return sys.executable
