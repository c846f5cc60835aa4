"""Every route `heimdex serve` has, tried without the right to it: the OpenAPI document's routes
and methods enumerated (a route added later cannot escape), the pages, and `/media/` with every
path trick we know. In-process, on real stores with objects at the keys that must never be
served."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from heimdex_pipeline.catalog.videos import register_video
from heimdex_pipeline.serve.app import create_app
from heimdex_pipeline_tests.conftest import stores_of

TOKEN = "tok-sweep-Secret-1"
PAGES = ["/", "/videos", "/videos/some-video-1", "/upload", "/docs", "/redoc"]
# keys a browser must never be handed, beside those it may be (`thumbnails/`, `incoming/`)
PRIVATE = {
    "sidecars/v-1/s-1.json": b'{"secret": "sidecar"}',
    "frames/v-1/candidates.zip": b"PK-frames",
    "embeddings/v-1/vectors.parquet": b"PAR1-vectors",
    "runs/r-1/video_chain.scenes.json": b'{"videos": []}',
}


@pytest.fixture
def guarded(make_settings):
    settings = make_settings(HEIMDEX_API_TOKEN=TOKEN)
    stores = stores_of(settings)
    for key, data in PRIVATE.items():
        stores.objects.put_bytes(key, data)
    stores.objects.put_bytes("thumbnails/v-1/s-1.webp", b"RIFF-thumb")
    with stores.catalog.session() as session:  # the thumbnail's video, so it may be served
        register_video(session, "v-1", "file:///v-1.mp4", "v-1.mp4", owner="local")
    return TestClient(create_app(settings, stores)), settings


def operations(client: TestClient) -> list[tuple[str, str]]:
    document = client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    found = []
    for path, methods in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "some-video-1", path)
        found += [(method.upper(), concrete) for method in methods]
    assert len(found) >= 6, found
    return found


WRONG = {
    "no token": {},
    "a wrong token": {"headers": {"Authorization": "Bearer nope"}},
    "an empty bearer": {"headers": {"Authorization": "Bearer "}},
    "a bare scheme": {"headers": {"Authorization": "Bearer"}},
    "basic auth": {"headers": {"Authorization": f"Basic {TOKEN}"}},
    "a wrong cookie": {"cookies": {"heimdex_token": "nope"}},
    "the token in the query": {"params": {"token": TOKEN, "access_token": TOKEN}},
}


@pytest.mark.parametrize("how", list(WRONG))
def test_every_api_route_refuses_a_caller_without_the_token(guarded, how):
    client, _ = guarded
    for method, path in operations(client):
        client.cookies.clear()
        answer = client.request(method, path, **WRONG[how])
        if path == "/health":
            assert answer.status_code in (200, 503)  # open by design: says up or down
            assert TOKEN not in answer.text
            continue
        assert answer.status_code == 401, (how, method, path, answer.status_code)
        assert answer.json() == {"detail": "a bearer token is required"}


@pytest.mark.parametrize("how", list(WRONG))
def test_every_page_sends_a_caller_without_the_token_to_sign_in(guarded, how):
    client, _ = guarded
    for page in PAGES:
        client.cookies.clear()
        answer = client.get(page, follow_redirects=False, **WRONG[how])
        assert answer.status_code == 303, (how, page, answer.status_code)
        assert answer.headers["location"] == f"/login?next={page}"
    for path in ("/openapi.json", "/media/thumbnails/v-1/s-1.webp"):
        client.cookies.clear()
        assert client.get(path, **WRONG[how]).status_code == 401, (how, path)


TRICKS = [
    "../catalog.sqlite",
    "%2e%2e/catalog.sqlite",
    "%2e%2e%2fcatalog.sqlite",
    "%252e%252e%252fcatalog.sqlite",
    "thumbnails/../catalog.sqlite",
    "thumbnails/%2e%2e/%2e%2e/catalog.sqlite",
    "thumbnails%2f..%2f..%2fcatalog.sqlite",
    "thumbnails\\..\\..\\catalog.sqlite",
    "thumbnails/..%5c..%5ccatalog.sqlite",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "//etc/passwd",
    "thumbnails//../../catalog.sqlite",
    "thumbnails/./../catalog.sqlite",
    "thumbnails/v-1/%00.webp",
    *PRIVATE,
    *[key.replace("/", "%2f") for key in PRIVATE],
    "thumbnails/../sidecars/v-1/s-1.json",
    "incoming/../frames/v-1/candidates.zip",
    "dagster/dagster.yaml",
    "catalog.sqlite",
    "lancedb/",
]


def test_media_path_tricks_are_refused_with_the_token(guarded):
    client, _ = guarded
    signed_in = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/media/thumbnails/v-1/s-1.webp", headers=signed_in).content == b"RIFF-thumb"
    for trick in TRICKS:
        answer = client.get(f"/media/{trick}", headers=signed_in)
        assert answer.status_code == 404, (trick, answer.status_code, answer.content[:60])
        for data in PRIVATE.values():
            assert data not in answer.content, trick
        assert b"SQLite format" not in answer.content and b"root:" not in answer.content


def test_the_token_never_reaches_an_answer_or_the_page(guarded):
    client, _ = guarded
    login = client.post("/login", data={"token": TOKEN, "next": "/"}, follow_redirects=False)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    for page in PAGES[:-2]:
        answer = client.get(page)
        assert TOKEN not in answer.text, page
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = client.post("/login", data={"token": TOKEN, "next": target},
                             follow_redirects=False)  # fmt: skip
        assert answer.headers["location"] == "/", (target, answer.headers["location"])


CROSS_SITE = {
    "another site's Origin": {"Origin": "http://localhost:9999"},
    "this host on another port": {"Origin": "http://testserver:8081"},
    "a null Origin": {"Origin": "null"},
    "another site's Referer": {"Referer": "http://evil.example/form.html"},
}
WRITES = ["POST", "PUT", "PATCH", "DELETE"]
A_CLIP = {"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64))}


def signed_in(client: TestClient) -> None:
    answer = client.post("/login", data={"token": TOKEN, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303 and "heimdex_token" in client.cookies


def nothing_uploaded(client: TestClient) -> None:
    stores = client.app.state.service.stores
    assert list(stores.objects.list("incoming/")) == []
    assert (
        client.get("/api/videos", headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"] == 1
    )  # the fixture's v-1 alone


@pytest.mark.parametrize("how", list(CROSS_SITE))
def test_a_cross_site_write_with_the_sign_in_cookie_is_refused(guarded, how):
    """Every method that changes something, on every route and page, signed in by the cookie
    but sent from another site: 403 saying so, before anything is read or stored."""
    client, _ = guarded
    signed_in(client)
    paths = {path for _, path in operations(client)} | {*PAGES, "/login"}
    for path in sorted(paths):
        for method in WRITES:
            answer = client.request(method, path, headers=CROSS_SITE[how], files=A_CLIP)
            assert answer.status_code == 403, (how, method, path, answer.status_code)
            assert answer.json()["detail"].startswith("a cross-site request is refused"), path
    nothing_uploaded(client)


def test_a_write_from_this_site_or_with_a_bearer_token_goes_through(guarded):
    client, _ = guarded
    signed_in(client)
    here = client.post("/api/videos", headers={"Origin": "http://testserver"}, files=A_CLIP)
    assert here.status_code == 201, here.text
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/api/videos", headers=bearer, files=A_CLIP).status_code == 201
    proxied = {**bearer, "Origin": "http://localhost:9999"}  # no browser form can send a bearer
    assert client.post("/api/videos", headers=proxied, files=A_CLIP).status_code == 201


def test_a_cross_site_write_is_refused_when_no_token_is_set(make_settings):
    """Without a token no cookie is needed to upload, so another site's form is refused too."""
    client = TestClient(create_app(settings := make_settings(), stores_of(settings)))
    other = {"Origin": "http://localhost:9999"}
    assert client.post("/api/videos", headers=other, files=A_CLIP).status_code == 403
    assert list(client.app.state.service.stores.objects.list("incoming/")) == []
    assert client.post("/api/videos", files=A_CLIP).status_code == 201  # a script, curl
