"""`heimdex serve` on real stores: every route, its errors, its guard, and the page in Chromium."""

import dataclasses
import io
import logging
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from heimdex_pipeline.catalog.models import Scene, VideoState
from heimdex_pipeline.catalog.videos import get_video
from heimdex_pipeline.cli.demo import frame_at
from heimdex_pipeline.pipeline.local_runs import index_paths
from heimdex_pipeline.serve.app import create_app
from heimdex_pipeline.settings import S3Settings, load_settings
from heimdex_pipeline.stores.objects.s3 import S3ObjectStore
from heimdex_pipeline.stores.vectors import VectorStore
from heimdex_pipeline_tests.conftest import (
    free_port,
    index_through_the_inbox,
    served,
    stores_of,
    suite_env,
    wait_for_model,
)

pytestmark = pytest.mark.slow

CLIPS = ["bikes.mp4", "testvideo.mp4", "issue-134-rotate.mp4"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"


def middle_frame(outcome, scene: dict, out: Path) -> Path:
    return frame_at(Path(outcome.source), (scene["start_s"] + scene["end_s"]) / 2, out)


def png(width: int, height: int, mode="RGB") -> bytes:
    """A PNG of one colour (a 1-bit one is small to make at any size: its header says the
    same pixel count)."""
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def library(sample_videos, tmp_path_factory, tiny_clip):
    """The sample clips indexed on embedded stores (a local folder: the app serves media)."""
    home = tmp_path_factory.mktemp("serve")
    env = suite_env(home, tiny_clip)
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


DEAD_S3 = S3Settings("127.0.0.1:1", "testing", "testing", secure=False)  # nothing listens


def _health_of(settings, stores) -> tuple[int, dict]:
    """/health of an app on these stores, once its model has loaded or failed to."""
    app = create_app(settings, stores)
    with TestClient(app) as client:
        service, deadline = app.state.service, time.monotonic() + 60
        while not (service.model_ready or service.model_error):
            assert time.monotonic() < deadline, "the model neither loaded nor failed"
            time.sleep(0.2)
        answer = client.get("/health")
    return answer.status_code, answer.json()


@pytest.mark.parametrize(
    ("part", "down"),
    [
        ("objects", lambda: S3ObjectStore(DEAD_S3, "heimdex-down", "objects")),
        ("vectors", lambda: VectorStore("s3://heimdex-down/lancedb", DEAD_S3)),
    ],
)
def test_health_answers_503_naming_a_store_that_is_down(library, part, down):
    env, _, _ = library
    settings = load_settings(env)
    status, body = _health_of(settings, dataclasses.replace(stores_of(settings), **{part: down()}))
    assert status == 503 and body["status"] == "degraded"
    assert body["checks"][part]["status"] == "down" and "detail" in body["checks"][part]
    assert {name for name, check in body["checks"].items() if check["status"] != "ok"} == {part}


def test_health_answers_503_when_the_model_cannot_load(library, tmp_path):
    """The weights the index was built with are gone: the stores answer, the model does not."""
    env, _, home = library
    catalog = tmp_path / "catalog.sqlite"
    with sqlite3.connect(home / "catalog.sqlite") as library_catalog:  # it stays as it is
        copy = sqlite3.connect(catalog)
        library_catalog.backup(copy)
    gone = str(tmp_path / "deleted-weights.pt")
    with copy:
        assert copy.execute("UPDATE search_models SET pretrained = ?", (gone,)).rowcount
    copy.close()
    settings = load_settings({**env, "HEIMDEX_DATABASE_URL": f"sqlite:///{catalog}"})
    status, body = _health_of(settings, stores_of(settings))
    assert status == 503 and body["checks"]["model"]["status"] == "unavailable"
    assert gone in body["checks"]["model"]["detail"]
    assert {name for name, check in body["checks"].items() if check["status"] != "ok"} == {"model"}


def test_the_access_log_has_method_path_status_and_time_and_no_query_or_token(library, caplog):
    env, _, _ = library
    token, words = "tok-Access-Log-1", "zebra-crossing-at-midnight"
    with TestClient(create_app(load_settings({**env, "HEIMDEX_API_TOKEN": token}))) as client:
        _wait_for_model(client)
        caplog.set_level(logging.INFO, logger="heimdex.serve")
        headers = {"Authorization": f"Bearer {token}"}
        answer = client.get("/api/search", params={"q": words}, headers=headers)
        assert answer.status_code == 200
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GET /api/")]
    assert re.fullmatch(r"GET /api/search 200 \d+\.\d ms", line), line
    assert words not in caplog.text and token not in caplog.text


def test_heimdex_serve_logs_no_query_text_and_no_token(library):
    """The command as run: uvicorn's own access log (which writes query strings) stays off."""
    env, _, _ = library
    token, words = "tok-Serve-Log-2", "lighthouse-keeper-secret"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", "serve", "--port", str(port)],
        env={**os.environ, **env, "HEIMDEX_API_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as answer:
                    if b'"model":{"status":"ok"}' in answer.read():
                        break
            except OSError:
                assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "heimdex serve did not come up"
            time.sleep(0.5)
        request = urllib.request.Request(
            f"{base}/api/search?q={words}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert re.search(r"heimdex\.serve GET /api/search 200 \d+\.\d ms", output), output[-3000:]
    assert words not in output and token not in output, output[-3000:]


def test_text_search_answers_ranked_hits_with_pictures_and_playable_urls(client, library):
    answer = client.get("/api/search", params={"q": "people on bicycles", "limit": 5})
    assert answer.status_code == 200
    body = answer.json()
    assert [hit["rank"] for hit in body["hits"]] == [1, 2, 3, 4, 5]
    hit = body["hits"][0]
    assert {"score", "video_id", "video_title", "scene_id", "start_s", "end_s"} <= set(hit)
    picture = client.get(hit["thumbnail_url"])
    assert picture.status_code == 200 and picture.content[:4] == b"RIFF"
    # it plays from play_from_s: the scene's start, or where the matched words are said
    assert hit["start_s"] <= hit["play_from_s"] <= hit["end_s"]
    assert hit["video_url"].startswith("/media/") and (
        hit["play_from_s"] == 0 or hit["video_url"].endswith(f"#t={hit['play_from_s']:.3f}")
    )
    assert hit["play_from_s"] == hit["start_s"] or "speech" in hit["matched"]


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
    bomb = client.post("/api/search/image", files={"image": ("b.png", png(20000, 20000, "1"))})
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
        index_through_the_inbox(settings)
        with stores.catalog.session() as session:
            assert get_video(session, body["video_id"]).state is VideoState.INDEXED
        listed = {v["video_id"]: v for v in client.get("/api/videos").json()["videos"]}
        assert listed[body["video_id"]]["state"] == "indexed"


def test_a_token_guards_everything_but_health(library, caplog):
    env, _, _ = library
    secret = "tok-Secret-8080"
    with TestClient(create_app(load_settings({**env, "HEIMDEX_API_TOKEN": secret}))) as client:
        caplog.set_level(logging.INFO)
        _wait_for_model(client)
        assert client.get("/health").status_code == 200  # open, and everything is up
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


def test_s3_urls_are_presigned_for_the_public_endpoint_and_one_that_cannot_be_is_null(
    sample_videos, make_settings, s3_env, postgres_url, caplog
):
    public = s3_env["HEIMDEX_S3_ENDPOINT"].replace("127.0.0.1", "localhost")
    secret = "s3-Secret-Key-77/+="  # unlike the access key, which every URL carries
    settings = make_settings(
        HEIMDEX_DATABASE_URL=postgres_url,
        HEIMDEX_S3_PUBLIC_ENDPOINT=public,
        **{**s3_env, "HEIMDEX_S3_SECRET_KEY": secret},
    )
    stores = stores_of(settings)
    (outcome,) = index_paths([sample_videos / "bikes.mp4"], settings)
    with TestClient(create_app(settings, stores)) as client:
        video = client.get("/api/videos").json()["videos"][0]
        assert video["thumbnail_url"].startswith(f"http://{public}/")
        assert "X-Amz-Expires=3600" in video["thumbnail_url"]
        for url in (video["thumbnail_url"], unquote(video["thumbnail_url"])):
            assert secret not in url and quote(secret, safe="") not in url
        with urllib.request.urlopen(video["thumbnail_url"], timeout=10) as response:
            assert response.read(4) == b"RIFF"
        detail = client.get(f"/api/videos/{outcome.video_id}").json()
        with urllib.request.urlopen(detail["video_url"], timeout=10) as response:
            assert response.read(8)[4:8] == b"ftyp"
        assert client.get("/media/thumbnails/x.webp").status_code == 404

        # a key the store refuses to sign (a row damaged by hand): logged, null, the rest served
        unsignable = "thumbnails/../elsewhere.webp"
        with stores.catalog.session() as session:
            session.execute(
                update(Scene)
                .where(Scene.video_id == outcome.video_id, Scene.index == 1)
                .values(thumbnail_key=unsignable)
            )
        caplog.set_level(logging.WARNING)
        detail = client.get(f"/api/videos/{outcome.video_id}")
        assert detail.status_code == 200
        scenes = detail.json()["scenes"]
        assert scenes[1]["thumbnail_url"] is None
        others = [s["thumbnail_url"] for s in scenes if s["index"] != 1]
        assert len(others) == 5 and all(url.startswith(f"http://{public}/") for url in others)
        assert detail.json()["video_url"].startswith(f"http://{public}/")
        assert f"could not make a URL for {unsignable}" in caplog.text


@pytest.fixture(scope="module")
def live_server(library):
    env, outcomes, _ = library
    with served(load_settings(env)) as base:
        wait_for_model(base)
        yield base, outcomes


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
    expect(page.locator(".hit")).to_have_count(min(scenes, 24))
    every_thumbnail_decoded(page)
    page.screenshot(path=str(ARTIFACTS / "serve-text-search.png"))

    page.set_input_files("#image", str(frame))
    expect(page.locator("#status")).to_contain_text("the picture", timeout=30_000)
    first = page.locator(".hit").first
    expect(first).to_have_attribute("href", f"/videos/{bikes.video_id}?t={scene['start_s']:.3f}")
    expect(page.locator(".hit")).to_have_count(min(scenes, 24))
    every_thumbnail_decoded(page)
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


def every_thumbnail_decoded(page) -> None:
    """Every hit shows its picture: a thumbnail that fails to load is replaced by a placeholder
    (so none may be there), and lazy ones are loaded first (so each is looked at)."""
    page.eval_on_selector_all(".hit img", "all => all.forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function(
        "[...document.querySelectorAll('.hit img')].every(i => i.complete)", timeout=30_000
    )
    hits = page.locator(".hit").count()
    decoded = page.eval_on_selector_all(".hit img", "all => all.filter(i => i.naturalWidth > 0)")
    assert page.locator(".hit .placeholder").count() == 0, "a thumbnail failed to load"
    assert len(decoded) == hits > 0


def test_a_video_uploaded_from_the_page_lands_in_incoming_and_its_state_refreshes(
    make_settings, sample_videos, browser_page
):
    """The upload page sends the file (it lands under incoming/, registered as uploading);
    the videos page, while a video is in progress, reloads itself until it is not."""
    from playwright.sync_api import expect

    settings = make_settings()
    stores = stores_of(settings)
    page = browser_page
    with served(settings) as base:
        page.goto(base + "/upload")
        page.set_input_files("#file", str(sample_videos / "realshort.mp4"))
        page.click("#upload button[type=submit]")
        expect(page.locator("#status")).to_contain_text("Uploaded as", timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serve-upload-page.png"))
        uploaded = settings.home / "objects" / "incoming" / "realshort.mp4"
        assert uploaded.read_bytes() == (sample_videos / "realshort.mp4").read_bytes()
        video_id = page.locator("#status").inner_text().split("Uploaded as ")[1].split(":")[0]
        with stores.catalog.session() as session:
            assert get_video(session, video_id).state is VideoState.UPLOADING

        page.goto(base + "/videos")
        expect(page.locator(".card .badge")).to_have_text(["uploading"])
        page.evaluate("window.notReloaded = true")
        page.wait_for_function("window.notReloaded !== true", timeout=10_000)  # it reloaded
        with stores.catalog.session() as session:  # the video settles (here: by hand)
            get_video(session, video_id).state = VideoState.FAILED
        expect(page.locator(".card .badge")).to_have_text(["failed"], timeout=10_000)
        page.evaluate("window.notReloaded = true")
        page.wait_for_timeout(6_000)  # longer than the page waits between reloads
        assert page.evaluate("window.notReloaded") is True, "it reloads with nothing changing"
