"""What `heimdex serve` refuses, and how early: the API's documents behind the token, uploads
checked before a byte is kept and cut off at their limit as they stream in, names too long or
hostile for the catalog. On real stores (SQLite, a local folder), in-process."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from heimdex_pipeline.catalog.models import Video
from heimdex_pipeline.serve.app import create_app
from heimdex_pipeline_tests.conftest import free_port, stores_of

MB = 2**20


@pytest.fixture
def service(make_settings):
    def start(**env: str):
        settings = make_settings(**env)
        stores = stores_of(settings)
        return TestClient(create_app(settings, stores)), stores

    return start


def uploads_kept(stores) -> tuple[list[str], list[str]]:
    """The objects under incoming/, and the catalog's rows for them."""
    keys = [info.key for info in stores.objects.list("incoming/")]
    with stores.catalog.session() as session:
        rows = [video.store_key for video in session.query(Video).all()]
    return keys, rows


def test_the_api_documents_need_the_token_like_every_route_but_health(service):
    client, _ = service(HEIMDEX_API_TOKEN="tok-docs-1")
    assert client.get("/openapi.json").status_code == 401
    for page in ("/docs", "/redoc"):
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={page}"
    right = {"Authorization": "Bearer tok-docs-1"}
    assert client.get("/openapi.json", headers=right).json()["info"]["title"] == "Heimdex"
    assert "swagger" in client.get("/docs", headers=right).text.lower()


def test_an_upload_declaring_more_than_the_limit_is_refused_before_its_body(service):
    client, stores = service(HEIMDEX_MAX_UPLOAD_MB="2")
    pulled = []

    def body():
        pulled.append(1)
        yield b"x" * 1024

    answer = client.post(
        "/api/videos",
        content=body(),
        headers={
            "content-type": "multipart/form-data; boundary=b",
            "content-length": str(3 * 2**30),
        },
    )
    assert answer.status_code == 413
    assert pulled == [] or sum(pulled) <= 1, "the body was read before the answer"
    assert uploads_kept(stores) == ([], [])


def test_names_too_long_or_hostile_for_the_catalog_are_kept_readable(service, sample_videos):
    client, stores = service()
    data = (sample_videos / "realshort.mp4").read_bytes()
    for name in ("a" * 600 + ".mp4", "nul\0in-name.mp4", "new\nline.mp4"):
        answer = client.post("/api/videos", files={"file": (name, data)})
        assert answer.status_code == 201, (name[:20], answer.text)
    keys, rows = uploads_kept(stores)
    assert sorted(keys) == sorted(rows), "every object under incoming/ has its row, and no more"
    with stores.catalog.session() as session:
        titles = [video.title for video in session.query(Video).all()]
    assert all(len(title) <= 512 and title.isprintable() for title in titles), titles
    assert any(title.endswith("aaaa.mp4") and "…" in title for title in titles)


class CountingApp:
    """The app, counting the body bytes it pulled from the server."""

    def __init__(self, app):
        self.app, self.received = app, 0

    async def __call__(self, scope, receive, send):
        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture
def real_server(make_settings):
    """`create_app` under uvicorn on loopback (it streams bodies, as `heimdex serve` does)."""
    import uvicorn

    servers = []

    def start(**env: str) -> tuple[int, CountingApp, object]:
        settings = make_settings(**env)
        stores = stores_of(settings)
        app = CountingApp(create_app(settings, stores))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return port, app, stores

    yield start
    for server in servers:
        server.should_exit = True


def stream(port: int, head: bytes, chunks: int, field: str = "file") -> bytes:
    """Send a chunked multipart upload of `chunks` MB while reading the answer; its status."""
    part = (
        f'--b\r\nContent-Disposition: form-data; name="{field}"; filename="big.mp4"\r\n\r\n'
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")

        def send_body() -> None:
            try:
                for piece in [part, *[b"\0" * MB] * chunks, b"\r\n--b--\r\n"]:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"0\r\n\r\n")
            except OSError:  # the server answered and closed: what we wanted
                pass

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        answer = sock.recv(4096)
        sender.join(timeout=20)
    return answer


@pytest.mark.slow  # a real server on loopback
def test_an_oversized_upload_is_cut_off_as_it_streams_in(real_server):
    port, app, stores = real_server(HEIMDEX_MAX_UPLOAD_MB="2")
    head = b"POST /api/videos HTTP/1.1\r\nHost: x\r\n"
    head += b"Content-Type: multipart/form-data; boundary=b\r\n"
    answer = stream(port, head, chunks=40)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than 2 MB" in answer
    assert app.received <= 3 * MB, f"the app read {app.received / MB:.1f} MB of a 40 MB upload"
    assert uploads_kept(stores) == ([], [])


@pytest.mark.slow  # a real server on loopback
def test_an_image_query_over_its_limit_is_cut_off_as_it_streams_in(real_server):
    port, app, _ = real_server(HEIMDEX_MAX_IMAGE_MB="1")
    head = b"POST /api/search/image HTTP/1.1\r\nHost: x\r\n"
    head += b"Content-Type: multipart/form-data; boundary=b\r\n"
    answer = stream(port, head, chunks=20, field="image")
    assert answer.startswith(b"HTTP/1.1 413") and app.received <= 2 * MB


@pytest.mark.slow  # a real server on loopback
def test_a_lying_content_length_gets_its_answer_at_once_from_a_real_server(real_server):
    port, app, stores = real_server(HEIMDEX_MAX_UPLOAD_MB="2")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/videos HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 3221225472\r\n\r\n" + b"x" * 1024
        )
        started = time.monotonic()
        head = sock.recv(4096)
        assert time.monotonic() - started < 5
    assert head.startswith(b"HTTP/1.1 413") and app.received == 0
    assert uploads_kept(stores) == ([], [])
