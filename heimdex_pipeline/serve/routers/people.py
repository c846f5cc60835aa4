"""People: `/api/people` (list, one person, rename), `/api/search/face` (scenes by a photo of
a face), and the People and person pages."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import (
    APIRouter,
    Body,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from PIL import Image

from heimdex_pipeline.catalog.people import MAX_NAME_CHARS, UnknownPersonError, name_person
from heimdex_pipeline.catalog.users import Caller
from heimdex_pipeline.search.people import (
    PeopleList,
    PersonDetail,
    PersonSummary,
    list_people,
    person_detail,
)
from heimdex_pipeline.search.searcher import NoSearchIndexError, SearchError
from heimdex_pipeline.serve import schemas
from heimdex_pipeline.serve.deps import (
    CallerDep,
    PageCallerDep,
    SearchArgs,
    ServiceDep,
    current_caller,
    page_caller,
)
from heimdex_pipeline.serve.routers.pages import page
from heimdex_pipeline.serve.uploads import read_limited

PersonId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]

router = APIRouter(
    tags=["people"], dependencies=[Depends(current_caller)], responses=schemas.GUARDED
)
pages = APIRouter(include_in_schema=False, dependencies=[Depends(page_caller)])


def _person(service, person_id: int, caller: Caller) -> PersonDetail:
    """The person, if the caller may see them (else 404, as for a missing one)."""
    service.catalog_ready()
    try:
        return person_detail(service.stores, person_id, service.links, caller.scope)
    except UnknownPersonError:
        raise HTTPException(404, f"no person {person_id}") from None


@router.get("/api/people", response_model=PeopleList)
def people(service: ServiceDep, caller: CallerDep) -> dict:
    """Everyone the faces of the caller's videos were grouped into, most faces first, with a
    face crop each (an admin: of every library)."""
    service.catalog_ready()
    return list_people(service.stores, service.links, caller.scope).as_dict()


@router.get(
    "/api/people/{person_id}",
    response_model=PersonDetail,
    responses={404: {"model": schemas.Problem, "description": "no such person"}},
)
def person(service: ServiceDep, caller: CallerDep, person_id: PersonId) -> dict:
    """One person and the scenes they are seen in, each playing from when the face is seen."""
    return _person(service, person_id, caller).as_dict()


@router.put(
    "/api/people/{person_id}/name",
    response_model=PersonSummary,
    responses={
        **schemas.CROSS_SITE,
        404: {"model": schemas.Problem, "description": "no such person"},
    },
)
def rename(
    service: ServiceDep,
    caller: CallerDep,
    person_id: PersonId,
    name: Annotated[str, Body(embed=True, min_length=1, max_length=MAX_NAME_CHARS)],
) -> dict:
    """Give a person a name (search by `person=` takes it)."""
    service.catalog_ready()
    try:
        with service.stores.catalog.session() as session:
            name_person(session, person_id, name, caller.scope)
    except UnknownPersonError:
        raise HTTPException(404, f"no person {person_id}") from None
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return _person(service, person_id, caller).person.as_dict()


@router.post(
    "/api/search/face",
    response_model=schemas.SearchAnswer,
    responses={
        **schemas.CROSS_SITE,
        400: {"model": schemas.Problem, "description": "not an image, or no face in it"},
        409: {"model": schemas.Problem, "description": "nothing is searchable yet"},
        413: {"model": schemas.Problem, "description": "the image is too large"},
    },
)
def search_face(
    service: ServiceDep,
    caller: CallerDep,
    photo: Annotated[UploadFile, File(description="a photo of the face")],
    args: SearchArgs,
    q: Annotated[str | None, Form(max_length=1000, description="and a text to rank by")] = None,
    max_distance: Annotated[
        float | None, Query(gt=0, le=2, description="match distance (default 0.6)")
    ] = None,
) -> dict:
    """The scenes where the photo's face is seen (nearest first; under the match distance
    only), or, with `q`, those of them that best match the text. A photo with several faces
    is searched by the largest (`faces_in_photo` says how many)."""
    data = read_limited(photo, service.settings.serve.max_image_bytes, "photo")
    try:
        picture = Image.open(io.BytesIO(data))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise HTTPException(400, f"not an image we can read: {error}") from None
    distance = max_distance or service.settings.face_match_distance
    try:
        answer = service.searcher.search(
            text=q or None, face=picture, face_distance=distance, owner=caller.scope, **args
        )
    except SearchError as error:
        if isinstance(error, NoSearchIndexError):
            raise
        raise HTTPException(400, str(error)) from None
    return answer.as_dict()


@pages.get("/people")
def people_page(request: Request, service: ServiceDep, caller: PageCallerDep) -> HTMLResponse:
    service.catalog_ready()
    listed = list_people(service.stores, service.links, caller.scope).people
    return page(request, "people.html", caller=caller, people=listed)


@pages.get("/people/{person_id}")
def person_page(
    request: Request, service: ServiceDep, caller: PageCallerDep, person_id: PersonId
) -> HTMLResponse:
    detail = _person(service, person_id, caller)
    return page(request, "person.html", caller=caller, person=detail.person, scenes=detail.scenes)
