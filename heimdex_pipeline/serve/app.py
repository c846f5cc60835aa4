"""`heimdex serve`: the HTTP API and the web page, on the catalog, the object store and LanceDB.

FastAPI on uvicorn (Starlette underneath, as Dagster's webserver): request validation with clear
422s and an OpenAPI page for free, plain `def` routes run in a thread pool. CLIP is loaded once at
start-up and kept warm; the service never imports the Dagster assets.
"""

from __future__ import annotations

import hmac
import logging
import os
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from PIL import Image

from heimdex_pipeline.catalog.database import CatalogNotReadyError
from heimdex_pipeline.catalog.videos import register_video
from heimdex_pipeline.keys import INCOMING_PREFIX
from heimdex_pipeline.search import (
    MAX_LIMIT,
    MAX_OFFSET,
    NoSearchIndexError,
    Searcher,
    SearchError,
    list_videos,
    video_detail,
)
from heimdex_pipeline.serve.links import MediaLinks, servable_key
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores import Stores, open_stores
from heimdex_pipeline.stores.objects import InvalidKeyError, LocalObjectStore
from heimdex_pipeline.video_ids import VIDEO_EXTENSIONS, slug, video_id_for

log = logging.getLogger("heimdex.serve")
HERE = Path(__file__).parent
TOKEN_COOKIE = "heimdex_token"
CHUNK = 1024 * 1024


@dataclass
class Service:
    """What the routes share: the stores, the searcher (with its warm model), the settings."""

    settings: Settings
    stores: Stores
    searcher: Searcher
    links: MediaLinks
    model_error: str | None = None
    model_ready: bool = False

    def catalog_ready(self) -> None:
        """CatalogNotReadyError (a 503) until the catalog exists at the code's schema."""
        if not getattr(self, "_catalog_ok", False):
            self.stores.catalog.check_schema()
            self._catalog_ok = True

    def warm(self) -> None:
        """Load the active model now, so the first query does not pay for it."""
        try:
            self.searcher.encoder()
            self.model_ready = True
        except NoSearchIndexError as error:
            self.model_error = str(error)
        except Exception as error:
            self.model_error = f"{type(error).__name__}: {error}"
            log.warning("could not load the search model: %s", self.model_error)


def create_app(settings: Settings, stores: Stores | None = None) -> FastAPI:
    """The service for these settings (the stores are opened here unless given)."""
    stores = stores or open_stores(settings, check_schema=False)  # /health says if it is not
    links = MediaLinks(stores.objects, settings)
    searcher = Searcher(stores, (settings.clip_model, settings.clip_pretrained), link=links)
    service = Service(settings=settings, stores=stores, searcher=searcher, links=links)

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
    templates = Jinja2Templates(directory=HERE / "templates")
    guard = _guard(settings.serve.api_token)

    @app.exception_handler(NoSearchIndexError)
    async def no_index(_: Request, error: NoSearchIndexError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(CatalogNotReadyError)
    async def no_catalog(_: Request, error: CatalogNotReadyError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(SearchError)
    async def bad_query(_: Request, error: SearchError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.get("/health", tags=["service"])
    def health() -> JSONResponse:
        """Each store and the model, with its status; 200 when all are up, else 503."""
        checks = {
            **{name: _probe(probe) for name, probe in stores.probes().items()},
            "model": {
                "status": "ok" if service.model_ready else "unavailable",
                **({"detail": service.model_error} if service.model_error else {}),
            },
        }
        up = all(c["status"] == "ok" for c in checks.values())
        return JSONResponse(
            {"status": "ok" if up else "degraded", "checks": checks},
            status_code=200 if up else 503,
        )

    @app.get("/api/search", tags=["search"], dependencies=[Depends(guard)])
    def search_text(
        q: Annotated[str, Query(min_length=1, max_length=1000, description="what to find")],
        args: Annotated[dict, Depends(search_args)],
    ) -> dict:
        """Scenes nearest to a text, best first, of videos indexed now."""
        return searcher.search(text=q, **args).as_dict()

    @app.post("/api/search/image", tags=["search"], dependencies=[Depends(guard)])
    def search_image(
        image: Annotated[UploadFile, File(description="a picture or a video frame")],
        args: Annotated[dict, Depends(search_args)],
    ) -> dict:
        """Scenes nearest to an image (the scene a frame comes from ranks first)."""
        data = _read_limited(image, settings.serve.max_image_bytes, "image")
        try:
            picture = Image.open(_bytes_io(data))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise HTTPException(400, f"not an image we can read: {error}") from None
        try:
            return searcher.search(image=picture, **args).as_dict()
        except SearchError as error:
            if isinstance(error, NoSearchIndexError):
                raise
            raise HTTPException(400, str(error)) from None

    @app.get("/api/videos", tags=["videos"], dependencies=[Depends(guard)])
    def videos(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict:
        """Videos, newest first, with the total, each with its first scene's thumbnail."""
        service.catalog_ready()
        return list_videos(stores, limit, offset, link=links).as_dict()

    @app.get("/api/videos/{video_id}", tags=["videos"], dependencies=[Depends(guard)])
    def video(video_id: Annotated[str, _video_id_path()]) -> dict:
        """One video with every scene."""
        service.catalog_ready()
        try:
            return video_detail(stores, video_id, link=links).as_dict()
        except LookupError:
            raise HTTPException(404, f"no video {video_id!r}") from None

    @app.post("/api/videos", tags=["videos"], status_code=201, dependencies=[Depends(guard)])
    def upload(file: Annotated[UploadFile, File(description="a video file")]) -> dict:
        """Put a video under incoming/: the inbox sensor indexes it (watch /api/videos)."""
        return _accept_upload(service, file)

    @app.get("/media/{key:path}", include_in_schema=False, dependencies=[Depends(guard)])
    def media(key: str) -> FileResponse:
        """Thumbnails and videos of a local store, with range requests (a player can seek)."""
        if not isinstance(stores.objects, LocalObjectStore):
            raise HTTPException(404, "media are served by the object store")
        try:
            path = stores.objects.root / servable_key(key)
        except InvalidKeyError as error:
            raise HTTPException(404, str(error)) from None
        if not path.is_file():
            raise HTTPException(404, f"no object {key!r}")
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    def page(request: Request, name: str, **context) -> HTMLResponse:
        if not _authorised(request, settings.serve.api_token):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return templates.TemplateResponse(request, name, context)

    @app.get("/", include_in_schema=False)
    def search_page(request: Request) -> HTMLResponse:
        return page(request, "search.html", notes=_model_note(service))

    @app.get("/videos", include_in_schema=False)
    def videos_page(
        request: Request,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> HTMLResponse:
        service.catalog_ready()
        listing = list_videos(stores, 48, offset, link=links)
        return page(request, "videos.html", page=listing)

    @app.get("/videos/{video_id}", include_in_schema=False)
    def video_page(
        request: Request,
        video_id: Annotated[str, _video_id_path()],
        t: Annotated[float, Query(ge=0, le=1e7)] = 0.0,
    ) -> HTMLResponse:
        service.catalog_ready()
        try:
            detail = video_detail(stores, video_id, link=links)
        except LookupError:
            raise HTTPException(404, f"no video {video_id!r}") from None
        return page(request, "video.html", video=detail.video, scenes=detail.scenes, start=t)

    @app.get("/upload", include_in_schema=False)
    def upload_page(request: Request) -> HTMLResponse:
        return page(request, "upload.html", limit_mb=settings.serve.max_upload_bytes // 2**20)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"next": _local(next)})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> RedirectResponse:
        form = await request.form()
        token = str(form.get("token", ""))
        expected = settings.serve.api_token
        target = _local(str(form.get("next", "/")))
        if expected and not hmac.compare_digest(token.encode(), expected.encode()):
            return RedirectResponse(f"/login?next={target}&wrong=1", status_code=303)
        response = RedirectResponse(target, status_code=303)
        if expected:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        # The path only: query strings may carry a user's words, never a secret, but stay out.
        log.info(
            "%s %s %s %.1f ms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    return app


def search_args(  # the filters and page shared by both searches
    video: Annotated[list[str] | None, Query(max_length=200)] = None,
    min_duration: Annotated[float | None, Query(ge=0, le=1e7)] = None,
    max_duration: Annotated[float | None, Query(ge=0, le=1e7)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    return {
        "video_ids": video or None,
        "min_duration_s": min_duration,
        "max_duration_s": max_duration,
        "limit": limit,
        "offset": offset,
    }


def _video_id_path():
    from fastapi import Path as PathParam

    return PathParam(min_length=1, max_length=96, pattern=r"^[a-z0-9-]+$")


def _local(target: str) -> str:
    """Only redirect within this site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _authorised(request: Request, token: str | None) -> bool:
    if not token:
        return True
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else ""
    given = given or request.cookies.get(TOKEN_COOKIE, "")
    return hmac.compare_digest(given.encode(), token.encode())


def _guard(token: str | None):
    def require_token(request: Request) -> None:
        if not _authorised(request, token):
            raise HTTPException(
                401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    return require_token


def _probe(check) -> dict:
    try:
        check()
    except Exception as error:
        return {"status": "down", "detail": f"{type(error).__name__}: {str(error)[:300]}"}
    return {"status": "ok"}


def _model_note(service: Service) -> list[str]:
    if service.model_error:
        return [service.model_error]
    return []


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def _read_limited(upload: UploadFile, limit: int, what: str) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the {what} is larger than {limit // 2**20} MB")
    return data


def upload_name(original: str | None) -> str:
    """A safe object name for an upload: a slug of the stem, its video extension."""
    name = PurePosixPath((original or "").replace("\\", "/")).name
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise HTTPException(
            400, f"{name or 'the file'}: not a video file name ({suffix or 'no extension'})"
        )
    return f"{slug(name[: -len(suffix)], 80)}{suffix}"


def _accept_upload(service: Service, upload: UploadFile) -> dict:
    """Stream the upload to a temporary file (size-limited), then move it into incoming/ in one
    step, under a name no other object has; register it so the videos page shows it at once."""
    service.catalog_ready()
    name = upload_name(upload.filename)
    limit = service.settings.serve.max_upload_bytes
    objects = service.stores.objects
    with tempfile.NamedTemporaryFile(prefix="heimdex-upload-", suffix=name) as staging:
        written = 0
        while chunk := upload.file.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise HTTPException(413, f"the video is larger than {limit // 2**20} MB")
            staging.write(chunk)
        staging.flush()
        if written == 0:
            raise HTTPException(400, f"{name}: the file is empty")
        key = _free_key(objects, name)
        objects.put_file(key, staging.name)
    uri = objects.uri(key)
    video_id = video_id_for(uri)
    with service.stores.catalog.session() as session:
        register_video(session, video_id, uri, upload.filename or name, store_key=key)
    log.info("accepted an upload of %d bytes as %s", written, key)
    return {"video_id": video_id, "key": key, "state": "uploading", "size_bytes": written}


def _free_key(objects, name: str) -> str:
    stem, suffix = os.path.splitext(name)
    for number in range(1, 1000):
        key = f"{INCOMING_PREFIX}{stem}{'' if number == 1 else f'-{number}'}{suffix}"
        if not objects.exists(key):
            return key
    raise HTTPException(409, f"too many uploads named {name}")
