"""`/media/{key}`: thumbnails, face crops and videos of a local store, with range requests (a
player can seek), each only to a caller who may see its video (another's answers 404, as a
missing one); with an S3 store the browser fetches presigned URLs, which only answers the
caller may see carry."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import select

from heimdex_pipeline.catalog.models import Video
from heimdex_pipeline.catalog.users import Caller
from heimdex_pipeline.serve.deps import CallerDep, ServiceDep, current_caller
from heimdex_pipeline.serve.links import servable_key
from heimdex_pipeline.serve.service import Service
from heimdex_pipeline.stores.keys import video_of_key
from heimdex_pipeline.stores.objects import InvalidKeyError, LocalObjectStore

router = APIRouter(include_in_schema=False, dependencies=[Depends(current_caller)])


def may_fetch(service: Service, caller: Caller, key: str) -> bool:
    """Whether the object belongs to a video the caller may see (an object of no video: no)."""
    video_id = video_of_key(key)
    with service.stores.catalog.reading() as session:
        if video_id is not None:
            owner = session.scalar(select(Video.owner).where(Video.id == video_id))
        else:  # a source under incoming/
            owner = session.scalar(select(Video.owner).where(Video.store_key == key))
    return owner is not None and caller.may_see(owner)


@router.get("/media/{key:path}")
def media(service: ServiceDep, caller: CallerDep, key: str) -> FileResponse:
    """One servable object of the local store (thumbnails, crops and videos only, by a valid
    key, of the caller's videos)."""
    objects = service.stores.objects
    if not isinstance(objects, LocalObjectStore):
        raise HTTPException(404, "media are served by the object store")
    try:
        path = objects.root / servable_key(key)
    except InvalidKeyError as error:
        raise HTTPException(404, str(error)) from None
    service.catalog_ready()
    if not path.is_file() or not may_fetch(service, caller, key):
        raise HTTPException(404, f"no object {key!r}")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
