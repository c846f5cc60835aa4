"""`/api/search`: scenes by text or by an uploaded image."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from PIL import Image

from heimdex_pipeline.search.searcher import NoSearchIndexError, SearchError
from heimdex_pipeline.serve import schemas
from heimdex_pipeline.serve.deps import CallerDep, SearchArgs, ServiceDep, current_caller
from heimdex_pipeline.serve.uploads import read_limited

router = APIRouter(
    prefix="/api/search",
    tags=["search"],
    dependencies=[Depends(current_caller)],
    responses={
        **schemas.GUARDED,
        409: {"model": schemas.Problem, "description": "nothing is searchable yet"},
    },
)


@router.get("", response_model=schemas.SearchAnswer)
def search_text(
    service: ServiceDep,
    caller: CallerDep,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="what to find")],
    args: SearchArgs,
    mode: Annotated[
        Literal["visual", "speech", "hybrid"],
        Query(description="the pictures (CLIP), what is said (transcripts), or both fused"),
    ] = "hybrid",
    person: Annotated[
        str | None,
        Query(
            min_length=1, max_length=256, description="only scenes with this person (id or name)"
        ),
    ] = None,
) -> dict:
    """Scenes of the caller's videos indexed now (an admin: of every library) that best match
    a text, best first; each hit says why it matched (`visual_score`, `speech`, `face`) and
    where to play it from (`play_from_s`)."""
    try:
        return service.searcher.search(
            text=q, mode=mode, person=person, owner=caller.scope, **args
        ).as_dict()
    except SearchError as error:
        if isinstance(error, NoSearchIndexError) or person is None:
            raise
        raise HTTPException(400, str(error)) from None


@router.post(
    "/image",
    response_model=schemas.SearchAnswer,
    responses={
        **schemas.CROSS_SITE,
        400: {"model": schemas.Problem, "description": "not an image"},
        413: {"model": schemas.Problem, "description": "the image is too large"},
    },
)
def search_image(
    service: ServiceDep,
    caller: CallerDep,
    image: Annotated[UploadFile, File(description="a picture or a video frame")],
    args: SearchArgs,
) -> dict:
    """Scenes nearest to an image (the scene a frame comes from ranks first)."""
    data = read_limited(image, service.settings.serve.max_image_bytes, "image")
    try:
        picture = Image.open(io.BytesIO(data))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise HTTPException(400, f"not an image we can read: {error}") from None
    try:
        return service.searcher.search(image=picture, owner=caller.scope, **args).as_dict()
    except SearchError as error:
        if isinstance(error, NoSearchIndexError):
            raise
        raise HTTPException(400, str(error)) from None
