"""`GET /health`: each store and the model, with its status (open: no token needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from heimdex_pipeline.serve import schemas
from heimdex_pipeline.serve.deps import ServiceDep

router = APIRouter(tags=["service"])


def _probe(check) -> dict:
    try:
        check()
    except Exception as error:
        return {"status": "down", "detail": f"{type(error).__name__}: {str(error)[:300]}"}
    return {"status": "ok"}


@router.get(
    "/health",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "a store or the model is down"}},
)
def health(service: ServiceDep) -> JSONResponse:
    """Each store and the model, with its status; 200 when all are up, else 503."""
    checks = {
        **{name: _probe(probe) for name, probe in service.stores.probes().items()},
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
