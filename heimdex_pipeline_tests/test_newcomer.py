"""The embedded default as a newcomer starts it: nothing under HEIMDEX_HOME, `heimdex dev`,
a video moved into `incoming/`, and it is indexed (no `heimdex db upgrade`, no other step)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from heimdex_pipeline_tests.conftest import free_port

pytestmark = pytest.mark.slow


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def states(catalog: Path) -> dict[str, tuple[str, str | None]]:
    if not catalog.exists():
        return {}
    with sqlite3.connect(catalog, timeout=30) as connection:
        try:
            rows = connection.execute("SELECT title, state, error_text FROM videos").fetchall()
        except sqlite3.OperationalError:  # being created
            return {}
    return {title: (state, error) for title, state, error in rows}


def test_heimdex_dev_on_an_empty_home_indexes_a_video_dropped_into_incoming(
    tmp_path, tiny_clip, sample_videos
):
    home = tmp_path / "fresh-home"  # does not exist: nothing made beforehand
    port = free_port()
    env = {
        **os.environ,
        "HEIMDEX_HOME": str(home),
        "HEIMDEX_CLIP_MODEL": tiny_clip[0],
        "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
    }
    env.pop("DAGSTER_HOME", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", "dev", "--port", str(port)],
        cwd=tmp_path,  # anywhere: not the repository
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_default_signals,
        start_new_session=True,
    )
    try:
        # the newcomer drops the video as soon as `heimdex dev` says where (before the UI is
        # up: the sensor's first tick can take it, instead of the one 30 s later)
        inbox = home / "objects" / "incoming"
        deadline = time.monotonic() + 120
        while not inbox.is_dir():  # heimdex dev makes the inbox folder
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "heimdex dev made no inbox folder"
            time.sleep(0.2)
        staging = home / "upload.part"
        shutil.copy(sample_videos / "realshort.mp4", staging)
        staging.rename(inbox / "realshort.mp4")  # moved in whole, as the README says
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, "heimdex dev did not start"
                time.sleep(1)
        deadline = time.monotonic() + 240
        while states(home / "catalog.sqlite").get("realshort.mp4", ("",))[0] != "indexed":
            found = states(home / "catalog.sqlite")
            assert found.get("realshort.mp4", ("",))[0] != "failed", found
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"not indexed in 4 minutes: {found}"
            time.sleep(2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
