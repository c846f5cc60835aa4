"""Faces and people in the catalog: a video's faces replaced in one transaction, people named,
merged and forgotten, and each person's figures (faces, videos, centre, cover) kept true."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from heimdex_pipeline.catalog.models import Face, Person, Video, VideoState

MAX_NAME_CHARS = 256


class UnknownPersonError(LookupError):
    def __init__(self, reference: str):
        super().__init__(f"no person {reference!r}: `heimdex people` lists them")
        self.reference = reference


def as_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def as_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def replace_faces(session: Session, video_id: str, faces: Sequence[Face]) -> set[int]:
    """The video's faces become exactly `faces` (not yet placed in people); the people who
    lost faces, for `recount`."""
    touched = set(
        session.scalars(
            select(Face.person_id).where(Face.video_id == video_id, Face.person_id.is_not(None))
        )
    )
    session.execute(delete(Face).where(Face.video_id == video_id))
    session.flush()
    session.add_all(faces)
    session.flush()
    return touched


def drop_faces_of_video(session: Session, video_id: str) -> None:
    """Remove a video's faces from the catalog and from every person who had some."""
    recount(session, replace_faces(session, video_id, []))


def faces_of_video(session: Session, video_id: str) -> list[Face]:
    return list(
        session.scalars(select(Face).where(Face.video_id == video_id).order_by(Face.time_s))
    )


def owners_with_unplaced_faces(session: Session, model_id: str) -> list[str]:
    """The owners whose libraries hold faces no person holds yet."""
    return list(
        session.scalars(
            select(Video.owner)
            .join(Face, Face.video_id == Video.id)
            .where(Face.model_id == model_id, Face.person_id.is_(None))
            .distinct()
            .order_by(Video.owner)
        )
    )


def unplaced_faces(
    session: Session, model_id: str, owner: str, limit: int | None = None
) -> list[Face]:
    """Faces of `owner`'s videos no person holds yet, in the order they were found."""
    query = (
        select(Face)
        .join(Video, Video.id == Face.video_id)
        .where(Face.model_id == model_id, Face.person_id.is_(None), Video.owner == owner)
        .order_by(Face.created_at, Face.id)
    )
    return list(session.scalars(query.limit(limit) if limit else query))


def people_of_model(session: Session, model_id: str, owner: str) -> list[Person]:
    """`owner`'s people (faces are grouped within one library)."""
    return list(
        session.scalars(select(Person).where(Person.model_id == model_id, Person.owner == owner))
    )


def recount(session: Session, person_ids: Iterable[int]) -> list[int]:
    """Recompute these people's faces, videos, centre and cover from their faces (a few
    queries per 500 people); a person left with no face is removed. The ids removed."""
    removed: list[int] = []
    ids = sorted(set(person_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        faces: dict[int, list] = {}
        for row in session.execute(
            select(Face.person_id, Face.id, Face.video_id, Face.descriptor, Face.w, Face.h).where(
                Face.person_id.in_(chunk)
            )
        ):
            faces.setdefault(row.person_id, []).append(row)
        for person in session.scalars(select(Person).where(Person.id.in_(chunk))):
            mine = faces.get(person.id)
            if not mine:
                session.delete(person)
                removed.append(person.id)
                continue
            person.face_count = len(mine)
            person.video_count = len({face.video_id for face in mine})
            vectors = np.stack([as_vector(face.descriptor) for face in mine])
            person.centre = as_blob(vectors.mean(0))
            person.cover_face_id = max(mine, key=lambda face: (face.w * face.h, face.id)).id
    session.flush()
    return removed


def find_person(session: Session, reference: str | int, owner: str | None = None) -> Person:
    """A person by id, or by name (case-insensitive; the only one of that name), of `owner`'s
    library when given (another's person is not found, as a missing one)."""
    text = str(reference).strip()
    if text.isdigit():
        person = session.get(Person, int(text))
        if person is not None and (owner is None or person.owner == owner):
            return person
    query = select(Person).where(func.lower(Person.name) == text.lower())
    if owner is not None:
        query = query.where(Person.owner == owner)
    named = list(session.scalars(query))
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        ids = ", ".join(str(p.id) for p in named)
        raise UnknownPersonError(f"{text} (several people have that name: {ids}; use an id)")
    raise UnknownPersonError(text)


def name_person(
    session: Session, reference: str | int, name: str, owner: str | None = None
) -> Person:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise ValueError(f"a name is 1 to {MAX_NAME_CHARS} characters, without NUL")
    person = find_person(session, reference, owner)
    person.name = name
    session.flush()
    return person


def merge_people(session: Session, keep: str | int, other: str | int) -> Person:
    """`other`'s faces join `keep` (who keeps their id and name, or takes `other`'s name if
    they had none); `other` is removed."""
    kept, gone = find_person(session, keep), find_person(session, other)
    if kept.id == gone.id:
        raise ValueError("a person cannot be merged with themselves")
    if kept.owner != gone.owner:
        raise ValueError(
            f"person {kept.id} is in {kept.owner}'s library and {gone.id} in {gone.owner}'s: "
            "people of different libraries are never merged"
        )
    session.execute(update(Face).where(Face.person_id == gone.id).values(person_id=kept.id))
    if kept.name is None:
        kept.name = gone.name
    session.delete(gone)
    session.flush()
    recount(session, [kept.id])
    return kept


@dataclass(frozen=True)
class Forgotten:
    person_id: int
    faces: list[tuple[str, str, str]]  # (face id, video id, crop key)


def forget_person(session: Session, reference: str | int) -> Forgotten:
    """Remove a person and every face of theirs from the catalog; what to remove elsewhere."""
    person = find_person(session, reference)
    faces = [
        (row.id, row.video_id, row.crop_key)
        for row in session.execute(
            select(Face.id, Face.video_id, Face.crop_key).where(Face.person_id == person.id)
        )
    ]
    session.execute(delete(Face).where(Face.person_id == person.id))
    forgotten = Forgotten(person.id, faces)
    session.delete(person)
    session.flush()
    return forgotten


def people_page(
    session: Session, model_id: str | None = None, owner: str | None = None
) -> list[Person]:
    """People (of `owner`'s library, when given), most faces first."""
    query = select(Person).order_by(Person.face_count.desc(), Person.id)
    if model_id is not None:
        query = query.where(Person.model_id == model_id)
    if owner is not None:
        query = query.where(Person.owner == owner)
    return list(session.scalars(query))


def faces_of(session: Session, person_id: int) -> list[Face]:
    """Every face of a person, whatever their videos' state."""
    return list(session.scalars(select(Face).where(Face.person_id == person_id)))


def faces_of_person(session: Session, person_id: int) -> list[Face]:
    """A person's faces in videos indexed now, by video and time."""
    return list(
        session.scalars(
            select(Face)
            .join(Video, Video.id == Face.video_id)
            .where(Face.person_id == person_id, Video.state == VideoState.INDEXED)
            .order_by(Face.video_id, Face.time_s)
        )
    )


def faces_by_id(session: Session, face_ids: Iterable[str]) -> dict[str, Face]:
    ids = list(set(face_ids))
    if not ids:
        return {}
    return {face.id: face for face in session.scalars(select(Face).where(Face.id.in_(ids)))}


def people_by_id(session: Session, person_ids: Iterable[int]) -> dict[int, Person]:
    ids = list(set(person_ids))
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(ids)))}


def face_counts(session: Session) -> dict[str, int]:
    """Faces, placed faces and people in the catalog."""
    faces = session.scalar(select(func.count()).select_from(Face)) or 0
    placed = session.scalar(select(func.count()).where(Face.person_id.is_not(None))) or 0
    people = session.scalar(select(func.count()).select_from(Person)) or 0
    return {"faces": faces, "faces_placed": placed, "people": people}
