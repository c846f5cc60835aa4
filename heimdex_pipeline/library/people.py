"""People across the library: new faces placed in people (incrementally), and a person
forgotten everywhere (catalog, face table, crops): the privacy answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text

from heimdex_pipeline.catalog.models import Person
from heimdex_pipeline.catalog.people import (
    as_blob,
    as_vector,
    face_counts,
    faces_of,
    find_person,
    forget_person,
    owners_with_unplaced_faces,
    people_of_model,
    recount,
    unplaced_faces,
)
from heimdex_pipeline.faces.grouping import JOIN_DISTANCE, Centres, place
from heimdex_pipeline.faces.model import DIM, MODEL_ID
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.faces import delete_faces

BATCH = 5000  # faces placed per transaction


@dataclass(frozen=True)
class Refresh:
    placed: int
    joined: int  # placed with a person who existed before
    new_people: int
    people: int
    faces: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _lock(session) -> None:
    """One refresh at a time on PostgreSQL (SQLite has one writer anyway)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7317001)"))


def refresh_people(
    stores: Stores, model_id: str = MODEL_ID, join_distance: float = JOIN_DISTANCE
) -> Refresh:
    """Place every face no person holds yet: with the nearest person of the same library if
    near enough, else as a new person of it (one user's faces never join another user's
    person). People keep their ids and names; their centres and counts follow."""
    started = time.perf_counter()
    placed = joined = new_people = 0
    with stores.catalog.session() as session:
        owners = owners_with_unplaced_faces(session, model_id)
    for owner in owners:
        one = _refresh_library(stores, model_id, owner, join_distance)
        placed, joined, new_people = placed + one[0], joined + one[1], new_people + one[2]
    with stores.catalog.session() as session:
        counts = face_counts(session)
    return Refresh(
        placed, joined, new_people, counts["people"], counts["faces"],
        round(time.perf_counter() - started, 3),
    )  # fmt: skip


def _refresh_library(
    stores: Stores, model_id: str, owner: str, join_distance: float
) -> tuple[int, int, int]:
    """Place `owner`'s unplaced faces among `owner`'s people: (placed, joined, new people)."""
    placed = joined = new_people = 0
    while True:
        with stores.catalog.session() as session:
            _lock(session)
            faces = unplaced_faces(session, model_id, owner, BATCH)
            if not faces:
                break
            people = people_of_model(session, model_id, owner)
            known = Centres(
                [p.id for p in people],
                np.stack([as_vector(p.centre) for p in people])
                if people
                else np.zeros((0, DIM), np.float32),
                np.asarray([p.face_count for p in people], dtype=np.int64),
            )
            vectors = np.stack([as_vector(face.descriptor) for face in faces])
            placement, _ = place(vectors, known, join_distance)
            created = [
                Person(
                    owner=owner, model_id=model_id, centre=as_blob(centre), face_count=int(count)
                )
                for centre, count in zip(placement.new_centres, placement.new_counts, strict=True)
            ]
            session.add_all(created)
            session.flush()
            touched = set()
            for face, person_id, new in zip(
                faces, placement.person, placement.new_person, strict=True
            ):
                face.person_id = person_id if person_id is not None else created[new].id
                touched.add(face.person_id)
                joined += person_id is not None
            session.flush()
            recount(session, touched)
            placed += len(faces)
            new_people += len(created)
    return placed, joined, new_people


def forget(stores: Stores, reference: str | int, owner: str | None = None) -> tuple[int, int]:
    """Remove a person and every face of theirs: face-table rows and crops first, then the
    catalog rows (so a forget cut short can be run again). Their (person id, faces removed).
    Faces come back only if their videos are indexed again."""
    with stores.catalog.session() as session:
        person = find_person(session, reference, owner)
        person_id = person.id
        faces = [(face.id, face.crop_key) for face in faces_of(session, person_id)]
    delete_faces(stores.vectors, [face_id for face_id, _ in faces])
    stores.objects.delete_keys([crop for _, crop in faces])
    with stores.catalog.session() as session:
        forgotten = forget_person(session, person_id)
    return person_id, len(forgotten.faces)
