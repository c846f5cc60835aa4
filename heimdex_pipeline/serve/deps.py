"""What routes depend on, as FastAPI dependencies: the service, the caller's right to be here,
and the query parameters several routes share."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi import Path as PathParam

from heimdex_pipeline.search.searcher import MAX_LIMIT, MAX_OFFSET
from heimdex_pipeline.serve.service import Service

TOKEN_COOKIE = "heimdex_token"
VideoId = Annotated[str, PathParam(min_length=1, max_length=96, pattern=r"^[a-z0-9-]+$")]


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def authorised(request: Request, token: str | None) -> bool:
    """Whether the request carries the token (bearer header or the sign-in cookie), if one is
    required."""
    if not token:
        return True
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else ""
    given = given or request.cookies.get(TOKEN_COOKIE, "")
    return hmac.compare_digest(given.encode(), token.encode())


def require_token(request: Request, service: ServiceDep) -> None:
    """401 unless the request carries the API token (when one is set)."""
    if not authorised(request, service.settings.serve.token):
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


def local_target(target: str) -> str:
    """A place to go after signing in: a path on this site, else `/` (never `//host`, a
    scheme, or a backslash that a browser may read as `//host`)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def require_sign_in(request: Request, service: ServiceDep) -> None:
    """A page for someone without the token sends them to sign in, before anything of the
    page is looked up (a missing video and another's answer alike)."""
    if not authorised(request, service.settings.serve.token):
        target = local_target(request.url.path)
        raise HTTPException(303, "sign in first", headers={"Location": f"/login?next={target}"})


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
