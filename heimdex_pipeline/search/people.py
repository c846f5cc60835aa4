"""The people of the library as the CLI, the API and the pages show them: a list with counts
and a face crop each, and one person's scenes, each playing from when the face is seen."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import select

from heimdex_pipeline.catalog.models import Scene
from heimdex_pipeline.catalog.people import faces_by_id, faces_of_person, find_person, people_page
from heimdex_pipeline.catalog.videos import videos_by_id
from heimdex_pipeline.search.faces import FaceMatch, face_match
from heimdex_pipeline.search.links import Link, source_url
from heimdex_pipeline.stores import Stores


@dataclass(frozen=True)
class PersonSummary:
    person_id: int
    name: str | None
    owner: str
    faces: int
    videos: int
    crop_url: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PersonScene:
    """A scene the person is seen in."""

    video_id: str
    video_title: str
    scene_id: str
    scene_index: int
    start_s: float
    end_s: float
    thumbnail_url: str | None
    video_url: str | None  # plays from when the face is seen
    face: FaceMatch


@dataclass(frozen=True)
class PersonDetail:
    person: PersonSummary
    scenes: list[PersonScene] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"person": self.person.as_dict(), "scenes": [asdict(s) for s in self.scenes]}


@dataclass(frozen=True)
class PeopleList:
    people: list[PersonSummary]

    def as_dict(self) -> dict[str, object]:
        return {"people": [p.as_dict() for p in self.people]}


def list_people(stores: Stores, link: Link, owner: str | None = None) -> PeopleList:
    """The people of `owner`'s library (else of every library), most faces first."""
    with stores.catalog.reading() as session:
        people = people_page(session, owner=owner)
        covers = faces_by_id(session, [p.cover_face_id for p in people if p.cover_face_id])
        return PeopleList(
            [
                PersonSummary(
                    person_id=p.id,
                    name=p.name,
                    owner=p.owner,
                    faces=p.face_count,
                    videos=p.video_count,
                    crop_url=link(covers[p.cover_face_id].crop_key)
                    if p.cover_face_id in covers
                    else None,
                )
                for p in people
            ]
        )


def person_detail(
    stores: Stores, reference: str | int, link: Link, owner: str | None = None
) -> PersonDetail:
    """A person and the scenes they are seen in (of videos indexed now), by video and time;
    UnknownPersonError if there is no such person (in `owner`'s library, when given)."""
    with stores.catalog.reading() as session:
        person = find_person(session, reference, owner)
        faces = faces_of_person(session, person.id)
        cover = faces_by_id(session, [person.cover_face_id] if person.cover_face_id else [])
        summary = PersonSummary(
            person.id,
            person.name,
            person.owner,
            person.face_count,
            person.video_count,
            link(cover[person.cover_face_id].crop_key) if cover else None,
        )
        scene_ids = {face.scene_id for face in faces}
        scenes = {
            row.id: row for row in session.scalars(select(Scene).where(Scene.id.in_(scene_ids)))
        }
        videos = videos_by_id(session, {face.video_id for face in faces}, owner)
        shown: list[PersonScene] = []
        seen: set[str] = set()
        for face in faces:
            scene = scenes.get(face.scene_id)
            if scene is None or face.scene_id in seen or face.video_id not in videos:
                continue
            seen.add(face.scene_id)
            video = videos[face.video_id]
            shown.append(
                PersonScene(
                    video_id=video.id,
                    video_title=video.title,
                    scene_id=scene.id,
                    scene_index=scene.index,
                    start_s=scene.start_s,
                    end_s=scene.end_s,
                    thumbnail_url=link(scene.thumbnail_key),
                    video_url=source_url(link, stores.objects, video, face.time_s),
                    face=face_match(face, person.name, 0.0, link),
                )
            )
    return PersonDetail(summary, shown)
