"""`dagster dev` from the repository root serves what `heimdex index` recorded."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from heimdex_pipeline.ingest import index_paths
from heimdex_pipeline.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]

THUMBNAIL_METADATA = """
query ($partition: String!) {
  assetOrError(assetKey: {path: ["thumbnails"]}) {
    ... on Asset {
      assetMaterializations(partitions: [$partition]) {
        partition
        metadataEntries { label ... on MarkdownMetadataEntry { mdStr } }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_signals() -> None:
    # Started from a script, `dagster dev` inherits ignored SIGINT/SIGTERM: restore them.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory, tiny_clip, sample_videos):
    settings = load_settings(
        {
            "HEIMDEX_HOME": str(tmp_path_factory.mktemp("ui") / "home"),
            "HEIMDEX_CLIP_MODEL": tiny_clip[0],
            "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
        }
    )
    (outcome,) = index_paths([sample_videos / "bikes.mp4"], settings)
    assert outcome.state == "indexed"
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(settings.dagster_home),
        "HEIMDEX_HOME": str(settings.home),
        "HEIMDEX_CLIP_MODEL": settings.clip_model,
        "HEIMDEX_CLIP_PRETRAINED": settings.clip_pretrained,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_default_signals,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dagster dev did not start") from None
                time.sleep(1)
        yield port, outcome
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_dagster_dev_serves_the_runs_and_the_contact_sheet(dagster_dev):
    port, outcome = dagster_dev
    answer = graphql(port, THUMBNAIL_METADATA, {"partition": outcome.video_id})
    (materialization,) = answer["data"]["assetOrError"]["assetMaterializations"]
    assert materialization["partition"] == outcome.video_id
    entries = {e["label"]: e for e in materialization["metadataEntries"]}
    sheet = entries["contact_sheet"]["mdStr"]
    assert sheet.count("data:image/jpeg;base64,") == len(outcome.scenes) == 6
    assert "#0 0.0-1.2s" in sheet


def test_the_contact_sheet_renders_in_the_ui(dagster_dev):
    chromium = Path(os.environ.get("HEIMDEX_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip(f"no browser at {chromium} (apt-get install chromium, or set HEIMDEX_CHROMIUM)")
    from playwright.sync_api import expect, sync_playwright

    port, outcome = dagster_dev
    graphql(port, "mutation { setNuxSeen }")  # the first-visit pop-up would cover the page
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(
                f"http://127.0.0.1:{port}/assets/thumbnails"
                f"?view=events&partition={outcome.video_id}"
            )
            page.get_by_text("[Show Markdown]").first.click(timeout=60_000)
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text("contact_sheet")
            expect(dialog).not_to_contain_text("<br>")  # the markup rendered, not shown as text
            images = dialog.locator("img")
            expect(images).to_have_count(len(outcome.scenes))
            rendered = images.evaluate_all(
                "all => all.map(i => [i.src.slice(0, 23), i.complete, i.naturalWidth])"
            )
            assert rendered == [["data:image/jpeg;base64,", True, 120]] * len(outcome.scenes)
            for scene in outcome.scenes:
                caption = f"#{scene['index']} {scene['start_s']:.1f}-{scene['end_s']:.1f}s"
                expect(dialog).to_contain_text(caption)
        finally:
            browser.close()
