"""`/media/{key}`: thumbnails and videos of a local store, with range requests (a player can
seek); with an S3 store the browser fetches presigned URLs instead."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from heimdex_pipeline.serve.deps import ServiceDep, require_token
from heimdex_pipeline.serve.links import servable_key
from heimdex_pipeline.stores.objects import InvalidKeyError, LocalObjectStore

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])


@router.get("/media/{key:path}")
def media(service: ServiceDep, key: str) -> FileResponse:
    """One servable object of the local store (thumbnails and videos only, by a valid key)."""
    objects = service.stores.objects
    if not isinstance(objects, LocalObjectStore):
        raise HTTPException(404, "media are served by the object store")
    try:
        path = objects.root / servable_key(key)
    except InvalidKeyError as error:
        raise HTTPException(404, str(error)) from None
    if not path.is_file():
        raise HTTPException(404, f"no object {key!r}")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
