"""The API's own documentation (`/openapi.json`, `/docs`, `/redoc`), behind the token like
every route but `/health`: a deployment's API surface is not for anyone who can reach it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from heimdex_pipeline.serve.deps import require_sign_in, require_token

router = APIRouter(include_in_schema=False)
OPENAPI_URL = "/openapi.json"


@router.get(OPENAPI_URL, dependencies=[Depends(require_token)])
def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=[Depends(require_sign_in)])
def swagger() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="Heimdex API")


@router.get("/redoc", dependencies=[Depends(require_sign_in)])
def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_URL, title="Heimdex API")
