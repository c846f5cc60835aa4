"""Shared fixtures: real PostgreSQL, a real S3-compatible server, real videos, a tiny CLIP."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from heimdex_pipeline.settings import S3Settings, Settings, load_settings
from heimdex_pipeline.stores import Stores

os.environ.setdefault("LANCEDB_LOG", "error")
# No test reaches the network: the model hub is off for this process and every child process,
# and a name lookup of anything but this machine fails the test that made it.
os.environ["HF_HUB_OFFLINE"] = "1"
# Speech costs every indexing test a Whisper worker and its transcriptions: it is off unless a
# test turns it on (test_transcripts.py does, with the packaged tiny.en).
os.environ.setdefault("HEIMDEX_ASR_MODEL", "off")
# Faces likewise (dlib on every kept frame): test_faces.py turns them on.
os.environ.setdefault("HEIMDEX_FACES", "off")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in LOOPBACK_NAMES and not str(name).startswith("127."):
        raise AssertionError(f"a test tried to reach the network: name lookup of {name!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only_getaddrinfo


def _import_anyio_now() -> None:
    """anyio imports its parts on first use, which may be in a server's worker thread, and
    pytest rewrites them (anyio ships a pytest plugin) with `ast.parse`. On CPython 3.11.7 two
    threads parsing at once can fail with "SystemError: AST constructor recursion depth
    mismatch" (seen in CI: serving a thumbnail, and loading the asyncio backend): import them
    all here, in the main thread, before any test starts a thread."""
    import anyio
    from anyio._core._eventloop import get_async_backend

    for name in dir(anyio):
        getattr(anyio, name)
    get_async_backend("asyncio")  # the event-loop backend, loaded on first use otherwise


_import_anyio_now()

TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI every suite must run: a skipped test fails the session."""
    if os.environ.get("HEIMDEX_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(
            f"HEIMDEX_FORBID_SKIPS=1 and {len(skipped)} tests were skipped", red=True
        )
        session.exitstatus = 1


@pytest.fixture(scope="session")
def sample_videos() -> Path:
    """../shared/videos: HEIMDEX_SAMPLE_VIDEOS must name it; set but missing is a failure."""
    folder = os.environ.get("HEIMDEX_SAMPLE_VIDEOS")
    if not folder:
        pytest.skip("HEIMDEX_SAMPLE_VIDEOS is not set")
    path = Path(folder)
    if not (path / "cuts.json").is_file():
        pytest.fail(
            f"HEIMDEX_SAMPLE_VIDEOS={folder} has no cuts.json: the sample videos are missing"
        )
    return path


@pytest.fixture(scope="session")
def cuts(sample_videos: Path) -> dict:
    data = json.loads((sample_videos / "cuts.json").read_text())
    return {name: facts for name, facts in data.items() if not name.startswith("_")}


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """HEIMDEX_TEST_DATABASE_URL: a PostgreSQL server we may create databases on."""
    url = os.environ.get("HEIMDEX_TEST_DATABASE_URL")
    if not url:
        pytest.skip("HEIMDEX_TEST_DATABASE_URL is not set")
    return url


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server, dropped afterwards."""
    server = make_url(server_url).set(drivername="postgresql+psycopg2")
    name = f"heimdex_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def pooled_dagster_yaml(url: str, kept: bool = True) -> str:
    """A dagster.yaml on Heimdex's pooled PostgreSQL storage at `url` (a postgresql+psycopg2://
    URL), with `kept_partitions_def: videos` as deploy/dagster.yaml has it unless not `kept`."""
    return (
        "storage:\n  custom:\n    module: heimdex_pipeline.pipeline.pooled_postgres\n"
        f"    class: PooledPostgresStorage\n    config:\n      postgres_url: {url}\n"
        + ("      kept_partitions_def: videos\n" if kept else "")
        + "telemetry:\n  enabled: false\n"
    )


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_database(postgres_server_url) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_server_env(port: int, bucket: str, **extra: str) -> dict[str, str]:
    """Settings that put the objects on an S3 server of the test's own at this port."""
    return {
        "HEIMDEX_OBJECT_STORE": f"s3://{bucket}/objects",
        "HEIMDEX_S3_ENDPOINT": f"127.0.0.1:{port}",
        "HEIMDEX_S3_ACCESS_KEY": "testing",
        "HEIMDEX_S3_SECRET_KEY": "testing",
        "HEIMDEX_S3_SECURE": "false",
        **extra,
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto's) on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket() -> str:
    return f"heimdex-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A tiny open_clip config and a checkpoint of its random weights, saved like real ones."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny_clip")
    config = folder / "heimdex-tiny.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(1234)
    model = open_clip.create_model("heimdex-tiny")
    checkpoint = folder / "heimdex-tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    return str(config), str(checkpoint)


@pytest.fixture(scope="session")
def tiny_clip_worker(tiny_clip: tuple[str, str]) -> Iterator[None]:
    """One CLIP worker process for the tiny model, shared by every run of the session (as
    `heimdex index` shares one across its runs): the worker's torch import is paid once."""
    from heimdex_pipeline.clip.worker import serving

    with serving(*tiny_clip):
        yield


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Each test leaves os.environ as it found it (a variable one test sets, such as
    DAGSTER_HOME, would otherwise reach every later test and every process it starts)."""
    before = dict(os.environ)
    yield
    if dict(os.environ) != before:
        os.environ.clear()
        os.environ.update(before)


class FastTierError(AssertionError):
    """A test of the fast tier started a server, a process or a database connection."""


@pytest.fixture(autouse=True)
def fast_tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Slow tests get the shared CLIP worker. A test without the `slow` mark may start no
    subprocess, no worker process, no S3 server and no PostgreSQL connection: doing so fails
    it, naming what it started, so the fast tier stays fast and honest."""
    if request.node.get_closest_marker("slow"):
        request.getfixturevalue("tiny_clip_worker")
        return
    import multiprocessing.process
    import subprocess

    # these run a program when first imported (`file`, `ffmpeg -version`): not the test's doing
    import dagster  # noqa: F401
    import psycopg2
    import scenedetect  # noqa: F401
    from moto.server import ThreadedMotoServer

    def refuse(what: str):
        def refused(*args, **kwargs):
            raise FastTierError(f"a fast test started {what}: mark it @pytest.mark.slow")

        return refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("a subprocess"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse("a worker process"))
    monkeypatch.setattr(ThreadedMotoServer, "start", refuse("an S3 server"))
    monkeypatch.setattr(psycopg2, "connect", refuse("a PostgreSQL connection"))


def suite_env(home: Path | str, tiny_clip: tuple[str, str], **extra: str) -> dict[str, str]:
    """The settings a test indexes with, as a mapping: the tiny model, and speech and faces as
    this process has them (off unless a test turns them on). A mapping is read alone, so one
    without these would index with speech and faces on (their defaults)."""
    return {
        "HEIMDEX_HOME": str(home),
        "HEIMDEX_CLIP_MODEL": tiny_clip[0],
        "HEIMDEX_CLIP_PRETRAINED": tiny_clip[1],
        "HEIMDEX_ASR_MODEL": os.environ["HEIMDEX_ASR_MODEL"],
        "HEIMDEX_FACES": os.environ["HEIMDEX_FACES"],
        **extra,
    }


@pytest.fixture
def make_settings(tmp_path: Path, tiny_clip: tuple[str, str]):
    """Settings on embedded defaults under tmp_path, with the tiny model; overrides by name."""

    def build(**env: str) -> Settings:
        return load_settings(suite_env(tmp_path / "home", tiny_clip, **env))

    return build


@pytest.fixture
def s3_env(s3_endpoint: str, s3_bucket: str) -> dict[str, str]:
    """Environment that puts objects and vectors on the loopback S3 server."""
    return {
        "HEIMDEX_OBJECT_STORE": f"s3://{s3_bucket}/objects",
        "HEIMDEX_LANCEDB_URI": f"s3://{s3_bucket}/lancedb",
        "HEIMDEX_S3_ENDPOINT": s3_endpoint,
        "HEIMDEX_S3_ACCESS_KEY": "testing",
        "HEIMDEX_S3_SECRET_KEY": "testing",
        "HEIMDEX_S3_SECURE": "false",
    }


def stores_of(settings: Settings) -> Stores:
    """The stores the settings name, the catalog migrated first (as `heimdex index` does)."""
    from heimdex_pipeline.catalog.database import upgrade
    from heimdex_pipeline.stores import open_stores

    upgrade(settings.database_url)
    return open_stores(settings)


def s3_settings(endpoint: str) -> S3Settings:
    return S3Settings(endpoint, "testing", "testing", secure=False)


def health_body(base: str) -> bytes:
    """What /health answers (a 503 while a part is down, the model loading say), or nothing."""
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as answer:
            return answer.read()
    except urllib.error.HTTPError as error:
        return error.read()
    except OSError:
        return b""


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free port, as `heimdex serve` runs it: its base URL."""
    import uvicorn

    from heimdex_pipeline.serve.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while b'"catalog":{"status":"ok"}' not in health_body(f"http://127.0.0.1:{port}"):
        assert time.monotonic() < deadline, "heimdex serve did not come up"
        time.sleep(0.3)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for_model(base: str, timeout_s: float = 60) -> None:
    """Until the served app's /health says its model has loaded."""
    deadline = time.monotonic() + timeout_s
    while b'"model":{"status":"ok"}' not in health_body(base):
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.3)


@contextlib.contextmanager
def chromium_page() -> Iterator:
    """A page of Debian's Chromium driven by Playwright (never `playwright install`)."""
    chromium = Path(os.environ.get("HEIMDEX_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip(f"no browser at {chromium} (apt-get install chromium, or set HEIMDEX_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


@pytest.fixture
def browser_page():
    with chromium_page() as page:
        yield page


def index_through_the_inbox(settings: Settings) -> None:
    """What the daemon does with what waits under incoming/: one inbox-sensor tick (which must
    ask for exactly one run), its partitions added, and that run of the chain in process."""
    import dagster as dg

    from heimdex_pipeline.pipeline.definitions import build_definitions
    from heimdex_pipeline.pipeline.instance import dagster_instance
    from heimdex_pipeline.pipeline.local_runs import QUIET_RUN_CONFIG
    from heimdex_pipeline.pipeline.sensors.inbox import build_inbox_sensor
    from heimdex_pipeline.pipeline.tags import INDEX_JOB

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
