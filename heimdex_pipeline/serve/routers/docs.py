"""The API's own documentation (`/openapi.json`, `/docs`, `/redoc`), behind the token like
every route but `/health`: a deployment's API surface is not for anyone who can reach it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from heimdex_pipeline.serve.deps import current_caller, page_caller

router = APIRouter(include_in_schema=False)
OPENAPI_URL = "/openapi.json"


@router.get(OPENAPI_URL, dependencies=[Depends(current_caller)])
def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=[Depends(page_caller)])
def swagger() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="Heimdex API")


@router.get("/redoc", dependencies=[Depends(page_caller)])
def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_URL, title="Heimdex API")
