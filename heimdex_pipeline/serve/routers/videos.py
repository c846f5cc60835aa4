"""`/api/videos`: the library, one video with its scenes, and uploads into the inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile

from heimdex_pipeline.search.listing import list_videos, video_detail
from heimdex_pipeline.search.searcher import MAX_LIMIT, MAX_OFFSET
from heimdex_pipeline.serve import schemas
from heimdex_pipeline.serve.deps import ServiceDep, VideoId, require_token
from heimdex_pipeline.serve.uploads import accept_upload

router = APIRouter(
    prefix="/api/videos",
    tags=["videos"],
    dependencies=[Depends(require_token)],
    responses={
        **schemas.GUARDED,
        503: {"model": schemas.Problem, "description": "the catalog is not there yet"},
    },
)


@router.get("", response_model=schemas.VideoPage)
def videos(
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """Videos, newest first, with the total, each with its first scene's thumbnail."""
    service.catalog_ready()
    return list_videos(service.stores, limit, offset, link=service.links).as_dict()


@router.get(
    "/{video_id}",
    response_model=schemas.VideoDetail,
    responses={404: {"model": schemas.Problem, "description": "no such video"}},
)
def video(service: ServiceDep, video_id: VideoId) -> dict:
    """One video with every scene."""
    service.catalog_ready()
    try:
        return video_detail(service.stores, video_id, link=service.links).as_dict()
    except LookupError:
        raise HTTPException(404, f"no video {video_id!r}") from None


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
    service: ServiceDep, file: Annotated[UploadFile, File(description="a video file")]
) -> dict:
    """Put a video under incoming/: the inbox sensor indexes it (watch /api/videos)."""
    return accept_upload(service, file)
