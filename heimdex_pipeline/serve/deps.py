"""What routes depend on, as FastAPI dependencies: the service, who is calling (and so whose
library they may read), and the query parameters several routes share.

Who is calling, from the token a request carries (a bearer header, else the sign-in cookie):
`HEIMDEX_API_TOKEN` is an admin's; a user's token is theirs (looked up by its SHA-256); none,
a wrong or a revoked token is a 401 (a page sends the browser to sign in). With no users and
no `HEIMDEX_API_TOKEN` the server is the single-person local tool: every caller is the default
owner, as an admin."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi import Path as PathParam

from heimdex_pipeline.catalog.users import Caller, caller_for_token
from heimdex_pipeline.search.searcher import MAX_LIMIT, MAX_OFFSET
from heimdex_pipeline.serve.service import Service

TOKEN_COOKIE = "heimdex_token"
VideoId = Annotated[str, PathParam(min_length=1, max_length=96, pattern=r"^[a-z0-9-]+$")]


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def given_token(request: Request) -> str:
    """The token a request carries: a bearer header, else the sign-in cookie ("" for none)."""
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return given or request.cookies.get(TOKEN_COOKIE, "")


def identify(service: Service, token: str) -> Caller | None:
    """Who a token is (None: nobody may come in with it)."""
    admin_token = service.settings.serve.token
    owner = service.settings.default_owner
    if admin_token and token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Caller(owner, admin=True)
    service.catalog_ready()
    with service.stores.catalog.reading() as session:
        if not admin_token and not service.has_users(session):
            return Caller(owner, admin=True)  # the single-person local tool
        return caller_for_token(session, token)


def current_caller(request: Request, service: ServiceDep) -> Caller:
    """The caller; 401 unless the request carries a live token (where one is needed)."""
    caller = identify(service, given_token(request))
    if caller is None:
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def local_target(target: str) -> str:
    """A place to go after signing in: a path on this site, else `/` (never `//host`, a
    scheme, or a backslash that a browser may read as `//host`)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 32 for ch in target):
        return "/"
    return target


def page_caller(request: Request, service: ServiceDep) -> Caller:
    """A page's caller: someone without a live token is sent to sign in, before anything of
    the page is looked up (a missing video and another's answer alike)."""
    caller = identify(service, given_token(request))
    if caller is None:
        target = local_target(request.url.path)
        raise HTTPException(303, "sign in first", headers={"Location": f"/login?next={target}"})
    return caller


PageCallerDep = Annotated[Caller, Depends(page_caller)]


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


SearchArgs = Annotated[dict, Depends(search_args)]
