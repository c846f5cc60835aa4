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

from heimdex_pipeline.catalog.database import CatalogNotReadyError
from heimdex_pipeline.search.searcher import NoSearchIndexError, SearchError
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
    )
    app.state.service = service
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in ROUTERS:
        app.include_router(router)
    add_error_answers(app)
    app.middleware("http")(access_log)
    return app


def add_error_answers(app: FastAPI) -> None:
    """The errors of the layers below, as the HTTP answers a client can act on."""
    statuses = {NoSearchIndexError: 409, CatalogNotReadyError: 503, SearchError: 422}
    for error_type, status in statuses.items():

        async def answer(_: Request, error: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"detail": str(error)}, status_code=status)

        app.add_exception_handler(error_type, answer)


async def access_log(request: Request, call_next):
    """One line a request: method, path, status, time. The path only: query strings may carry
    a user's words, and stay out."""
    started = time.perf_counter()
    response = await call_next(request)
    log.info(
        "%s %s %s %.1f ms",
        request.method,
        request.url.path,
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response
