"""`dagster dev` from the repository root serves what `heimdex index` recorded."""

import base64
import io
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
from PIL import Image

from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import suite_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

PARTITION_STATUSES = """
query ($asset: [String!]!) {
  assetNodes(assetKeys: [{path: $asset}]) {
    assetPartitionStatuses {
      ... on DefaultPartitionStatuses { materializedPartitions failedPartitions }
    }
  }
}
"""
ARTIFACTS = ROOT / "artifacts"

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
def ui_library(tmp_path_factory, tiny_clip, sample_videos):
    """The home the UI serves: one video indexed and one bad file failed, in one run."""
    settings = load_settings(suite_env(tmp_path_factory.mktemp("ui") / "home", tiny_clip))
    bad = Path(settings.home) / "broken clip.mp4"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("not a video\n" * 50)
    outcome, failed = index_paths([sample_videos / "bikes.mp4", bad], settings)  # one run
    assert outcome.state == "indexed" and failed.state == "failed"
    return settings, outcome, failed


@pytest.fixture(scope="module")
def dagster_dev(ui_library):
    settings, outcome, failed = ui_library
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
        yield port, outcome, failed
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_dagster_dev_serves_the_runs_and_the_contact_sheet(dagster_dev, cuts):
    port, outcome, _ = dagster_dev
    answer = graphql(port, THUMBNAIL_METADATA, {"partition": outcome.video_id})
    (materialization,) = answer["data"]["assetOrError"]["assetMaterializations"]
    assert materialization["partition"] == outcome.video_id
    entries = {e["label"]: e for e in materialization["metadataEntries"]}
    sheet = entries["contact_sheet"]["mdStr"]
    expected_cuts = cuts["bikes.mp4"]["cuts_s"]
    assert sheet.count("data:image/jpeg;base64,") == len(outcome.scenes) == len(expected_cuts) + 1
    for scene in outcome.scenes:  # each scene captioned with its number and span
        assert f"#{scene['index']} {scene['start_s']:.1f}-{scene['end_s']:.1f}s" in sheet
    first = outcome.scenes[0]
    assert first["start_s"] == 0 and first["end_s"] == pytest.approx(expected_cuts[0], abs=0.08)


def test_the_contact_sheet_renders_in_the_ui(dagster_dev, browser_page):
    from playwright.sync_api import expect

    page = browser_page

    port, outcome, _ = dagster_dev
    graphql(port, "mutation { setNuxSeen }")  # the first-visit pop-up would cover the page
    page.goto(f"http://127.0.0.1:{port}/assets/thumbnails?view=events&partition={outcome.video_id}")
    page.get_by_text("[Show Markdown]").first.click(timeout=60_000)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("contact_sheet")
    expect(dialog).not_to_contain_text("<br>")  # the markup rendered, not shown as text
    images = dialog.locator("img")
    expect(images).to_have_count(len(outcome.scenes))
    rendered = images.evaluate_all("all => all.map(i => [i.src, i.complete, i.naturalWidth])")
    width, height = display_size(Path(outcome.source))
    for source, complete, shown_width in rendered:
        assert source.startswith("data:image/jpeg;base64,") and complete
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as picture:
            assert shown_width == picture.width  # the picture the metadata carries, decoded
            assert picture.width / picture.height == pytest.approx(width / height, rel=0.03)
    for scene in outcome.scenes:
        caption = f"#{scene['index']} {scene['start_s']:.1f}-{scene['end_s']:.1f}s"
        expect(dialog).to_contain_text(caption)


def display_size(path: Path) -> tuple[float, float]:
    """The video's picture as a player shows it (coded size times its sample aspect ratio)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ratio = float(stream.sample_aspect_ratio or 1)
        return stream.codec_context.width * ratio, stream.codec_context.height


def test_the_ui_shows_which_video_of_a_batch_failed(dagster_dev):
    port, outcome, failed = dagster_dev
    for asset in ["raw_videos", "scenes", "thumbnails", "embeddings", "search_index"]:
        (node,) = graphql(port, PARTITION_STATUSES, {"asset": [asset]})["data"]["assetNodes"]
        statuses = node["assetPartitionStatuses"]
        assert statuses["materializedPartitions"] == [outcome.video_id], asset
        assert statuses["failedPartitions"] == [failed.video_id], asset


def test_the_partitions_page_shows_the_failed_video_in_chromium(dagster_dev, browser_page):
    from playwright.sync_api import expect

    page = browser_page

    port, outcome, failed = dagster_dev
    graphql(port, "mutation { setNuxSeen }")
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"http://127.0.0.1:{port}/assets/raw_videos?view=partitions")
    expect(page.get_by_text(failed.video_id).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text(outcome.video_id).first).to_be_visible()
    page.get_by_text(failed.video_id).first.click()
    expect(page.get_by_text("Failed").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dagster-partitions-one-failed.png"))
    page.goto(f"http://127.0.0.1:{port}/runs")
    expect(page.get_by_text("index_video").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "dagster-runs-index-video.png"))
    runs = graphql(port, "{ runsOrError { ... on Runs { results { runId } } } }")
    (run,) = runs["data"]["runsOrError"]["results"]
    page.goto(f"http://127.0.0.1:{port}/runs/{run['runId']}")
    expect(page.get_by_text("1 of 2 videos failed").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text(failed.video_id).first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dagster-run-names-the-failed-video.png"))


def test_a_retired_video_keeps_its_history_and_search(ui_library, dagster_dev, browser_page):
    """Last in this module: it retires the indexed video's partition. The video stays
    searchable; the UI shows its materializations (run, metadata) under the asset's events."""
    from playwright.sync_api import expect

    from heimdex_pipeline.pipeline.instance import dagster_instance
    from heimdex_pipeline.pipeline.retire import retire_partitions
    from heimdex_pipeline.search.searcher import Searcher
    from heimdex_pipeline_tests.conftest import stores_of

    settings, outcome, failed = ui_library
    port = dagster_dev[0]
    instance = dagster_instance(settings)
    done = retire_partitions(instance, lambda: {outcome.video_id}, keep=0)
    assert done.retired == [outcome.video_id]
    assert instance.get_dynamic_partitions("videos") == [failed.video_id]  # failed: kept
    instance.dispose()
    hits = Searcher(stores_of(settings)).search(text="people on bikes", limit=5).hits
    assert hits and {hit.video_id for hit in hits} == {outcome.video_id}
    answer = graphql(port, THUMBNAIL_METADATA, {"partition": outcome.video_id})
    (materialization,) = answer["data"]["assetOrError"]["assetMaterializations"]
    assert materialization["partition"] == outcome.video_id
    page = browser_page
    graphql(port, "mutation { setNuxSeen }")
    page.goto(f"http://127.0.0.1:{port}/assets/thumbnails?view=events&partition={outcome.video_id}")
    expect(page.get_by_text("[Show Markdown]").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "dagster-retired-video-history.png"))
