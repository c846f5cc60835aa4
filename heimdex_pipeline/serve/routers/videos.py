"""`/api/videos`: the caller's library, one video with its scenes, uploads into the inbox, and
deleting a video. Another user's video answers 404, exactly as a missing one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile

from heimdex_pipeline.catalog.models import Video, VideoState
from heimdex_pipeline.library.lifecycle import delete_video
from heimdex_pipeline.search.listing import list_videos, video_detail
from heimdex_pipeline.search.searcher import MAX_LIMIT, MAX_OFFSET
from heimdex_pipeline.serve import schemas
from heimdex_pipeline.serve.deps import CallerDep, ServiceDep, VideoId, current_caller
from heimdex_pipeline.serve.uploads import accept_upload

router = APIRouter(
    prefix="/api/videos",
    tags=["videos"],
    dependencies=[Depends(current_caller)],
    responses={
        **schemas.GUARDED,
        503: {"model": schemas.Problem, "description": "the catalog is not there yet"},
    },
)
NOT_FOUND = {404: {"model": schemas.Problem, "description": "no such video"}}


@router.get("", response_model=schemas.VideoPage)
def videos(
    service: ServiceDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """The caller's videos (an admin: every library's), newest first, with the total, each
    with its owner and its first scene's thumbnail."""
    service.catalog_ready()
    return list_videos(service.stores, limit, offset, service.links, caller.scope).as_dict()


@router.get("/{video_id}", response_model=schemas.VideoDetail, responses=NOT_FOUND)
def video(service: ServiceDep, caller: CallerDep, video_id: VideoId) -> dict:
    """One video with every scene."""
    service.catalog_ready()
    try:
        return video_detail(service.stores, video_id, service.links, caller.scope).as_dict()
    except LookupError:
        raise HTTPException(404, f"no video {video_id!r}") from None


@router.delete(
    "/{video_id}",
    response_model=schemas.Deleted,
    responses={**schemas.CROSS_SITE, **NOT_FOUND},
)
def delete(service: ServiceDep, caller: CallerDep, video_id: VideoId) -> dict:
    """Delete a video of the caller's and everything made from it (rows, objects, vectors)."""
    service.catalog_ready()
    with service.stores.catalog.session() as session:
        row = session.get(Video, video_id)
        found = row is not None and row.state is not VideoState.DELETED
        if not found or not caller.may_see(row.owner):
            raise HTTPException(404, f"no video {video_id!r}")
    delete_video(video_id, service.stores)
    return {"video_id": video_id, "state": "deleted"}


@router.post(
    "",
    status_code=201,
    response_model=schemas.Upload,
    responses={
        **schemas.CROSS_SITE,
        400: {"model": schemas.Problem, "description": "not a video file name, or empty"},
        413: {"model": schemas.Problem, "description": "larger than HEIMDEX_MAX_UPLOAD_MB"},
    },
)
def upload(
    service: ServiceDep,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="a video file")],
) -> dict:
    """Put a video into the caller's library: it waits under incoming/ (the caller's folder)
    where the inbox sensor indexes it (watch /api/videos)."""
    return accept_upload(service, file, caller.name)
