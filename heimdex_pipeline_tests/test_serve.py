"""`heimdex serve` on real stores: every route, its errors, its guard, and the page in Chromium."""

import io
import logging
import os
import threading
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import get_video
from heimdex_pipeline.cli.demo import frame_at
from heimdex_pipeline.pipeline.definitions import build_definitions
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import QUIET_RUN_CONFIG, index_paths
from heimdex_pipeline.pipeline.sensors.inbox import build_inbox_sensor
from heimdex_pipeline.pipeline.tags import INDEX_JOB
from heimdex_pipeline.serve.app import create_app
from heimdex_pipeline.settings import load_settings
from heimdex_pipeline_tests.conftest import stores_of

pytestmark = pytest.mark.slow

CLIPS = ["bikes.mp4", "testvideo.mp4", "issue-134-rotate.mp4"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"


def middle_frame(outcome, scene: dict, out: Path) -> Path:
    return frame_at(Path(outcome.source), (scene["start_s"] + scene["end_s"]) / 2, out)


def png(width: int, height: int, colour="teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def library(sample_videos, tmp_path_factory, tiny_clip):
    """The sample clips indexed on embedded stores (a local folder: the app serves media)."""
    home = tmp_path_factory.mktemp("serve")
    env = {
        "HEIMDEX_HOME": str(home),
        "HEIMDEX_CLIP_MODEL": tiny_clip[0],
        "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
    }
    outcomes = index_paths([sample_videos / name for name in CLIPS], load_settings(env))
    assert all(o.state == "indexed" for o in outcomes)
    return env, {Path(o.source).name: o for o in outcomes}, home


@pytest.fixture(scope="module")
def client(library):
    env, _, _ = library
    with TestClient(create_app(load_settings(env))) as client:
        _wait_for_model(client)
        yield client


def _wait_for_model(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/health").json()["checks"]["model"]["status"] != "ok":
        assert time.monotonic() < deadline, client.get("/health").json()
        time.sleep(0.2)


def test_health_reports_each_part(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "checks": {name: {"status": "ok"} for name in ("catalog", "objects", "vectors", "model")},
    }


def test_text_search_answers_ranked_hits_with_pictures_and_playable_urls(client, library):
    answer = client.get("/api/search", params={"q": "people on bicycles", "limit": 5})
    assert answer.status_code == 200
    body = answer.json()
    assert [hit["rank"] for hit in body["hits"]] == [1, 2, 3, 4, 5]
    hit = body["hits"][0]
    assert {"score", "video_id", "video_title", "scene_id", "start_s", "end_s"} <= set(hit)
    picture = client.get(hit["thumbnail_url"])
    assert picture.status_code == 200 and picture.content[:4] == b"RIFF"
    assert hit["video_url"].startswith("/media/") and (
        hit["start_s"] == 0 or hit["video_url"].endswith(f"#t={hit['start_s']:.3f}")
    )


def test_a_frame_finds_its_scene(client, library, tmp_path):
    _, outcomes, _ = library
    bikes = outcomes["bikes.mp4"]
    scene = bikes.scenes[3]
    frame = frame_at(
        Path(bikes.source), (scene["start_s"] + scene["end_s"]) / 2, tmp_path / "f.png"
    )
    answer = client.post("/api/search/image", files={"image": ("f.png", frame.read_bytes())})
    assert answer.status_code == 200, answer.text
    assert answer.json()["hits"][0]["scene_id"] == scene["scene_id"]


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"q": "x", "limit": 0}, "limit"),
        ({"q": "x", "limit": 10**12}, "limit"),
        ({"q": "x", "offset": 10**12}, "offset"),
        ({"q": "x", "offset": -1}, "offset"),
        ({}, "q"),
        ({"q": "x" * 1001}, "q"),
        ({"q": "x", "min_duration": "soon"}, "min_duration"),
        ({"q": "x", "max_duration": -1}, "max_duration"),
    ],
)
def test_bad_query_parameters_get_a_clear_422(client, params, where):
    answer = client.get("/api/search", params=params)
    assert answer.status_code == 422
    assert where in {part for error in answer.json()["detail"] for part in error["loc"]}


def test_bad_images_get_clear_4xx(client, library, monkeypatch):
    bomb = client.post("/api/search/image", files={"image": ("b.png", png(20000, 20000))})
    assert bomb.status_code == 400 and "pixels" in bomb.json()["detail"]
    text = client.post("/api/search/image", files={"image": ("t.png", b"hello")})
    assert text.status_code == 400 and "not an image" in text.json()["detail"]
    env, _, _ = library
    small = create_app(load_settings({**env, "HEIMDEX_MAX_IMAGE_MB": "0.01"}))
    with TestClient(small) as limited:
        big = limited.post("/api/search/image", files={"image": ("p.png", os.urandom(20_000))})
    assert big.status_code == 413 and "MB" in big.json()["detail"]


def test_search_with_nothing_indexed_says_so(make_settings):
    settings = make_settings()
    catalog = settings.home / "catalog.sqlite"
    assert not catalog.exists()
    with TestClient(create_app(settings)) as fresh:  # not even a catalog yet
        answer = fresh.get("/api/search", params={"q": "anything"})
        assert answer.status_code == 409 and "heimdex index" in answer.json()["detail"]
    assert catalog.exists(), "an embedded catalog is made by its first user"
    stores_of(settings)  # at head, still empty
    with TestClient(create_app(settings)) as empty:
        answer = empty.get("/api/search", params={"q": "anything"})
    assert answer.status_code == 409 and "heimdex index" in answer.json()["detail"]


def test_videos_are_listed_newest_first_with_a_total_and_shown_one_by_one(client, library):
    _, outcomes, _ = library
    page = client.get("/api/videos", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["videos"]) == 2
    rest = client.get("/api/videos", params={"limit": 2, "offset": 2}).json()["videos"]
    listed = [v["video_id"] for v in page["videos"] + rest]
    assert listed == [outcomes[name].video_id for name in reversed(CLIPS)]
    first = page["videos"][0]
    assert first["state"] == "indexed" and first["scene_count"] >= 1
    assert client.get(first["thumbnail_url"]).status_code == 200
    detail = client.get(f"/api/videos/{outcomes['bikes.mp4'].video_id}").json()
    assert len(detail["scenes"]) == 6 and detail["title"] == "bikes.mp4"
    assert client.get("/api/videos/no-such-video").status_code == 404
    assert client.get("/api/videos/BAD id").status_code == 422


def test_media_are_served_with_ranges_and_nothing_else_is(client, library):
    _, outcomes, _ = library
    video_url = client.get(f"/api/videos/{outcomes['bikes.mp4'].video_id}").json()["video_url"]
    whole = client.get(video_url)
    part = client.get(video_url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"].startswith("bytes 100-199/")
    for sneaky in [
        "thumbnails/../catalog.sqlite",
        "frames/x/candidates.zip",
        "..%2Fcatalog.sqlite",
    ]:
        assert client.get(f"/media/{sneaky}").status_code == 404


def test_an_upload_lands_in_incoming_and_the_sensor_indexes_it(make_settings, sample_videos):
    settings = make_settings()
    home = settings.home
    stores_of(settings)  # a catalog of its own: the other tests count the library's videos
    with TestClient(create_app(settings)) as client:
        data = (sample_videos / "realshort.mp4").read_bytes()
        answer = client.post("/api/videos", files={"file": ("../../etc/My Clip!.MP4", data)})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["key"] == "incoming/my-clip.mp4" and body["state"] == "uploading"
        assert (home / "objects" / "incoming" / "my-clip.mp4").read_bytes() == data
        listed = {v["video_id"]: v for v in client.get("/api/videos").json()["videos"]}
        assert listed[body["video_id"]]["state"] == "uploading"
        again = client.post("/api/videos", files={"file": ("My Clip!.mp4", data)}).json()
        assert again["key"] == "incoming/my-clip-2.mp4"  # never over another upload
        assert client.post("/api/videos", files={"file": ("notes.txt", b"x")}).status_code == 400
        assert client.post("/api/videos", files={"file": ("empty.mp4", b"")}).status_code == 400
        small = create_app(make_settings(HEIMDEX_MAX_UPLOAD_MB="0.01"))
        with TestClient(small) as limited:
            too_big = limited.post("/api/videos", files={"file": ("big.mp4", data)})
        assert too_big.status_code == 413

        stores = stores_of(settings)
        stores.objects.delete(again["key"])
        definitions = build_definitions(settings)
        resources = {k: definitions.resources[k] for k in ("catalog", "objects", "vectors")}
        instance = dagster_instance(settings)
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            tick = build_inbox_sensor(settings.run_batch_size)(context)
        (request,) = tick.run_requests
        for add in tick.dynamic_partitions_requests:
            instance.add_dynamic_partitions(add.partitions_def_name, add.partition_keys)
        job = definitions.resolve_job_def(INDEX_JOB)
        tags = {"dagster/partition": request.partition_key}
        assert job.execute_in_process(instance=instance, tags=tags, run_config=QUIET_RUN_CONFIG)
        with stores.catalog.session() as session:
            assert get_video(session, body["video_id"]).state is VideoState.INDEXED
        listed = {v["video_id"]: v for v in client.get("/api/videos").json()["videos"]}
        assert listed[body["video_id"]]["state"] == "indexed"


def test_a_token_guards_everything_but_health(library, caplog):
    env, _, _ = library
    secret = "tok-Secret-8080"
    with TestClient(create_app(load_settings({**env, "HEIMDEX_API_TOKEN": secret}))) as client:
        caplog.set_level(logging.INFO)
        assert client.get("/health").status_code in (200, 503)
        assert client.get("/api/videos").status_code == 401
        assert client.get("/api/search", params={"q": "x"}).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/api/videos", headers=wrong).status_code == 401
        right = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/videos", headers=right).status_code == 200
        page = client.get("/videos", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        login = client.post("/login", data={"token": secret, "next": "/videos"},
                            follow_redirects=False)  # fmt: skip
        assert login.status_code == 303 and login.headers["location"] == "/videos"
        assert client.get("/videos").status_code == 200  # the cookie now
        assert client.get("/openapi.json").status_code == 200
    assert secret not in caplog.text


def test_s3_urls_are_presigned_for_the_public_endpoint(
    sample_videos, make_settings, s3_env, postgres_url
):
    public = s3_env["HEIMDEX_S3_ENDPOINT"].replace("127.0.0.1", "localhost")
    settings = make_settings(
        HEIMDEX_DATABASE_URL=postgres_url, HEIMDEX_S3_PUBLIC_ENDPOINT=public, **s3_env
    )
    stores = stores_of(settings)
    (outcome,) = index_paths([sample_videos / "bikes.mp4"], settings)
    with TestClient(create_app(settings, stores)) as client:
        video = client.get("/api/videos").json()["videos"][0]
        assert video["thumbnail_url"].startswith(f"http://{public}/")
        assert "X-Amz-Expires=3600" in video["thumbnail_url"]
        assert s3_env["HEIMDEX_S3_SECRET_KEY"] + "x" not in video["thumbnail_url"]
        with urllib.request.urlopen(video["thumbnail_url"], timeout=10) as response:
            assert response.read(4) == b"RIFF"
        detail = client.get(f"/api/videos/{outcome.video_id}").json()
        with urllib.request.urlopen(detail["video_url"], timeout=10) as response:
            assert response.read(8)[4:8] == b"ftyp"
        assert client.get("/media/thumbnails/x.webp").status_code == 404


@pytest.fixture(scope="module")
def live_server(library):
    """The app under uvicorn on a free port, as `heimdex serve` runs it."""
    import socket

    import uvicorn

    env, outcomes, _ = library
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(load_settings(env)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                if b'"model":{"status":"ok"}' in answer.read():
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "heimdex serve did not come up"
        time.sleep(0.3)
    yield f"http://127.0.0.1:{port}", outcomes
    server.should_exit = True
    thread.join(timeout=10)


def test_the_page_finds_a_frame_shows_pictures_and_plays_from_the_scene(
    live_server, tmp_path, browser_page
):
    from playwright.sync_api import expect

    page = browser_page

    base, outcomes = live_server
    bikes = outcomes["bikes.mp4"]
    scene = bikes.scenes[2]
    frame = frame_at(
        Path(bikes.source), (scene["start_s"] + scene["end_s"]) / 2, tmp_path / "q.png"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(base + "/")
    page.fill("#q", "people riding bicycles in a street")
    page.click("button[type=submit]")
    expect(page.locator(".hit").first).to_be_visible(timeout=30_000)
    scenes = sum(len(outcome.scenes) for outcome in outcomes.values())
    assert page.locator(".hit").count() >= min(scenes, 24)
    page.wait_for_function(
        "[...document.querySelectorAll('.hit img')].slice(0, 5)"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(ARTIFACTS / "serve-text-search.png"))

    page.set_input_files("#image", str(frame))
    expect(page.locator("#status")).to_contain_text("the picture", timeout=30_000)
    first = page.locator(".hit").first
    expect(first).to_have_attribute("href", f"/videos/{bikes.video_id}?t={scene['start_s']:.3f}")
    widths = page.eval_on_selector_all(
        ".hit img", "all => all.slice(0, 6).map(i => i.complete && i.naturalWidth)"
    )
    assert all(width and width > 0 for width in widths), widths
    page.screenshot(path=str(ARTIFACTS / "serve-image-search.png"))

    first.click()
    page.wait_for_url(f"**/videos/{bikes.video_id}?t=*")
    page.wait_for_function(
        "document.querySelector('#player').readyState >= 1 && "
        "document.querySelector('#player').currentTime > 0"
    )
    current = page.evaluate("document.querySelector('#player').currentTime")
    assert current == pytest.approx(scene["start_s"], abs=0.05)
    expect(page.locator(".scene")).to_have_count(len(bikes.scenes))
    page.screenshot(path=str(ARTIFACTS / "serve-video-page.png"))

    page.goto(base + "/videos")
    expect(page.locator(".card")).to_have_count(3)
    page.wait_for_function(
        "[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(ARTIFACTS / "serve-videos-page.png"))
    page.goto(base + "/upload")
    page.screenshot(path=str(ARTIFACTS / "serve-upload-page.png"))
