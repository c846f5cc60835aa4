"""`heimdex serve`: the HTTP API and the web page, on the catalog, the object store and LanceDB.

FastAPI on uvicorn (Starlette underneath, as Dagster's webserver): request validation with clear
422s and an OpenAPI document with a response model for every answer, plain `def` routes run in
a thread pool. CLIP is loaded once at start-up and kept warm; the service never imports the
Dagster assets. The routes live in `routers/`, one module per area; what they share comes in
as dependencies (`deps.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heimdex_pipeline.catalog.database import CatalogNotReadyError
from heimdex_pipeline.search.searcher import NoSearchIndexError, SearchError
from heimdex_pipeline.serve.limits import BodyLimits
from heimdex_pipeline.serve.origins import SameOriginWrites
from heimdex_pipeline.serve.routers import ROUTERS
from heimdex_pipeline.serve.service import Service
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores import Stores, open_stores

log = logging.getLogger("heimdex.serve")
HERE = Path(__file__).parent


def create_app(settings: Settings, stores: Stores | None = None) -> FastAPI:
    """The service for these settings (the stores are opened here unless given)."""
    stores = stores or open_stores(settings, check_schema=False)  # /health says if it is not
    service = Service.open(settings, stores)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        threading.Thread(target=service.warm, name="warm-model", daemon=True).start()
        yield

    app = FastAPI(
        title="Heimdex",
        summary="Find the scene where… in your videos, by text or by an example image.",
        version="1",
        lifespan=lifespan,
        # served by routers/docs.py, behind the token
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in ROUTERS:
        app.include_router(router)
    add_error_answers(app)
    app.add_middleware(BodyLimits, limits=body_limits(settings))
    app.add_middleware(SameOriginWrites)  # outside the limits: refused before its body
    app.add_middleware(AccessLog)
    return app


def body_limits(settings: Settings):
    """The bounded routes and their limits (`HEIMDEX_MAX_UPLOAD_MB`, `HEIMDEX_MAX_IMAGE_MB`)."""
    bounded = {
        ("POST", "/api/videos"): ("video", settings.serve.max_upload_bytes),
        ("POST", "/api/search/image"): ("image", settings.serve.max_image_bytes),
    }
    return lambda method, path: bounded.get((method, path.rstrip("/") or "/"))


def add_error_answers(app: FastAPI) -> None:
    """The errors of the layers below, as the HTTP answers a client can act on."""
    statuses = {NoSearchIndexError: 409, CatalogNotReadyError: 503, SearchError: 422}
    for error_type, status in statuses.items():

        async def answer(_: Request, error: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"detail": str(error)}, status_code=status)

        app.add_exception_handler(error_type, answer)


class AccessLog:
    """One line a request: method, path, status, time. The path only: query strings may carry
    a user's words, and stay out. (Plain ASGI: it adds no task group between the server and a
    route reading its body, so a body cut off at its limit reaches the route as a 413.)"""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            log.info(
                "%s %s %s %.1f ms",
                scope.get("method"),
                scope.get("path"),
                status,
                (time.perf_counter() - started) * 1000,
            )
