"""The web pages: search, videos, one video, upload, and sign-in (a page without the token
sends the browser to sign in; the sign-in sets a cookie)."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from heimdex_pipeline.search.listing import list_videos, video_detail
from heimdex_pipeline.search.searcher import MAX_OFFSET
from heimdex_pipeline.serve.deps import (
    TOKEN_COOKIE,
    ServiceDep,
    VideoId,
    local_target,
    require_sign_in,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_sign_in)])
sign_in = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "templates")
VIDEOS_PER_PAGE = 48


def page(request: Request, name: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


@router.get("/")
def search_page(request: Request, service: ServiceDep) -> HTMLResponse:
    return page(request, "search.html", notes=service.notes())


@router.get("/videos")
def videos_page(
    request: Request,
    service: ServiceDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    service.catalog_ready()
    listing = list_videos(service.stores, VIDEOS_PER_PAGE, offset, link=service.links)
    return page(request, "videos.html", page=listing)


@router.get("/videos/{video_id}")
def video_page(
    request: Request,
    service: ServiceDep,
    video_id: VideoId,
    t: Annotated[float, Query(ge=0, le=1e7)] = 0.0,
) -> HTMLResponse:
    service.catalog_ready()
    try:
        detail = video_detail(service.stores, video_id, link=service.links)
    except LookupError:
        raise HTTPException(404, f"no video {video_id!r}") from None
    return page(request, "video.html", video=detail.video, scenes=detail.scenes, start=t)


@router.get("/upload")
def upload_page(request: Request, service: ServiceDep) -> HTMLResponse:
    limit_mb = service.settings.serve.max_upload_bytes // 2**20
    return page(request, "upload.html", limit_mb=limit_mb)


@sign_in.get("/login")
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": local_target(next)})


@sign_in.post("/login")
async def login(request: Request, service: ServiceDep) -> RedirectResponse:
    form = await request.form()
    token = str(form.get("token", ""))
    expected = service.settings.serve.token
    target = local_target(str(form.get("next", "/")))
    if expected and not hmac.compare_digest(token.encode(), expected.encode()):
        return RedirectResponse(f"/login?next={target}&wrong=1", status_code=303)
    response = RedirectResponse(target, status_code=303)
    if expected:
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response
