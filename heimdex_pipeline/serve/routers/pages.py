"""The web pages: search, videos, one video, upload, and sign-in (a page without a live token
sends the browser to sign in; signing in sets a cookie holding the token, `HttpOnly`,
`SameSite=Strict`, `Secure` when HEIMDEX_PUBLIC_URL is https://; sign-ins are limited per
client address). Each page shows the caller's own library; an admin's shows every library and
whose each video is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from heimdex_pipeline.search.listing import list_videos, video_detail
from heimdex_pipeline.search.searcher import MAX_OFFSET
from heimdex_pipeline.serve.deps import (
    TOKEN_COOKIE,
    PageCallerDep,
    ServiceDep,
    VideoId,
    identify,
    local_target,
    page_caller,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_caller)])
sign_in = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "templates")
VIDEOS_PER_PAGE = 48


def page(request: Request, name: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


@router.get("/")
def search_page(request: Request, service: ServiceDep, caller: PageCallerDep) -> HTMLResponse:
    return page(request, "search.html", caller=caller, notes=service.notes())


@router.get("/videos")
def videos_page(
    request: Request,
    service: ServiceDep,
    caller: PageCallerDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    service.catalog_ready()
    listing = list_videos(service.stores, VIDEOS_PER_PAGE, offset, service.links, caller.scope)
    return page(request, "videos.html", caller=caller, page=listing)


@router.get("/videos/{video_id}")
def video_page(
    request: Request,
    service: ServiceDep,
    caller: PageCallerDep,
    video_id: VideoId,
    t: Annotated[float, Query(ge=0, le=1e7)] = 0.0,
) -> HTMLResponse:
    service.catalog_ready()
    try:
        detail = video_detail(service.stores, video_id, service.links, caller.scope)
    except LookupError:
        raise HTTPException(404, f"no video {video_id!r}") from None
    return page(
        request, "video.html", caller=caller, video=detail.video, scenes=detail.scenes, start=t
    )


@router.get("/upload")
def upload_page(request: Request, service: ServiceDep, caller: PageCallerDep) -> HTMLResponse:
    limit_mb = service.settings.serve.max_upload_bytes // 2**20
    return page(request, "upload.html", caller=caller, limit_mb=limit_mb)


@sign_in.get("/login")
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": local_target(next)})


@sign_in.post("/login")
async def login(request: Request, service: ServiceDep) -> Response:
    """Sign in with a token: the cookie is set only for a token that is someone's."""
    address = request.client.host if request.client else "unknown"
    wait = service.sign_ins.retry_after(address)
    if wait is not None:
        return JSONResponse(
            {"detail": f"too many sign-in attempts from {address}: try again in {wait} s"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    form = await request.form()
    token = str(form.get("token", "")).strip()
    target = local_target(str(form.get("next", "/")))
    if identify(service, "") is not None:  # no token is needed here at all
        return RedirectResponse(target, status_code=303)
    if not token or identify(service, token) is None:
        return RedirectResponse(f"/login?next={quote(target)}&wrong=1", status_code=303)
    response = RedirectResponse(target, status_code=303)
    secure = (service.settings.serve.public_url or "").startswith("https://")
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=secure)
    return response


@sign_in.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, httponly=True, samesite="strict")
    return response
