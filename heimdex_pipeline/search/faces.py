"""Find scenes by who is in them: by a photo of a face (its descriptor against the face
model's table, only matches under the threshold), or by a person (their faces in the catalog).
Each scene's best face is its match: when it is seen, where, how near, its crop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.people import (
    UnknownPersonError,
    as_vector,
    faces_by_id,
    faces_of_person,
    find_person,
    people_by_id,
)
from heimdex_pipeline.catalog.videos import videos_by_id
from heimdex_pipeline.faces.model import DIM, MODEL_ID, Box, distance, shared_face_model
from heimdex_pipeline.search.links import Link
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.faces import faces_table, nearest_faces

MATCH_DISTANCE = 0.6  # dlib's: under it, usually the same person
FACE_DEPTH = 1000  # nearest faces looked at for one photo
QUERY_MIN_PX = 20  # a photo's face may be small: any the detector finds counts


class FaceQueryError(ValueError):
    """A photo that cannot be searched by (no face in it, not an image)."""


@dataclass(frozen=True)
class FaceMatch:
    """Why a hit matched by a face: which face, whose, when and where it is seen."""

    face_id: str
    video_id: str
    person_id: int | None
    person_name: str | None
    time_s: float
    box: list[float]  # x, y, w, h as fractions of the frame
    distance: float  # Euclidean, to the photo's face or the person's centre
    crop_url: str | None


@dataclass(frozen=True)
class PhotoFace:
    """The face a photo is searched by, and how many the photo shows."""

    descriptor: np.ndarray
    faces_in_photo: int

    @property
    def note(self) -> str | None:
        if self.faces_in_photo > 1:
            return (
                f"the photo shows {self.faces_in_photo} faces: searched by the largest "
                "(crop the photo to search by another)"
            )
        return None


def photo_face(picture: Image.Image, source: str | Path = "the photo") -> PhotoFace:
    """The largest face of a photo; FaceQueryError saying so if it shows none."""
    found = shared_face_model().find(np.asarray(picture.convert("RGB")), QUERY_MIN_PX)
    if not found:
        raise FaceQueryError(f"{source}: no face found in it (0 faces)")
    return PhotoFace(found[0].descriptor, len(found))


def face_match(face, name: str | None, gap: float, link: Link) -> FaceMatch:
    """A catalog face as a hit shows it: box as fractions of its frame, crop as a URL."""
    return FaceMatch(
        face_id=face.id,
        video_id=face.video_id,
        person_id=face.person_id,
        person_name=name,
        time_s=round(face.time_s, 3),
        box=Box(face.x, face.y, face.w, face.h).relative(face.frame_w, face.frame_h),
        distance=round(float(gap), 4),
        crop_url=link(face.crop_key),
    )


def _best_per_scene(
    stores: Stores,
    faces_with_gaps: list[tuple[object, float]],
    link: Link,
    owner: str | None = None,
) -> dict[str, FaceMatch]:
    """Each scene's nearest face, of videos indexed now (`owner`'s, when given), nearest scenes
    first."""
    with stores.catalog.reading() as session:
        videos = videos_by_id(session, {face.video_id for face, _ in faces_with_gaps}, owner)
        people = people_by_id(session, {f.person_id for f, _ in faces_with_gaps if f.person_id})
    best: dict[str, FaceMatch] = {}
    for face, gap in sorted(faces_with_gaps, key=lambda pair: pair[1]):
        video = videos.get(face.video_id)
        if video is None or video.state is not VideoState.INDEXED or face.scene_id in best:
            continue
        person = people.get(face.person_id) if face.person_id else None
        best[face.scene_id] = face_match(face, person.name if person else None, gap, link)
    return best


def scenes_with_face(
    stores: Stores,
    descriptor: np.ndarray,
    link: Link,
    where: str | None = None,
    threshold: float = MATCH_DISTANCE,
    owner: str | None = None,
) -> dict[str, FaceMatch]:
    """The scenes where a face under `threshold` from `descriptor` is seen, nearest first
    (`where` holds the owner's pre-filter; `owner` is checked in the catalog again)."""
    table = faces_table(stores.vectors, MODEL_ID, DIM, create=False)
    if table is None:
        return {}
    rows = [
        r for r in nearest_faces(table, descriptor, FACE_DEPTH, where) if r["distance"] < threshold
    ]
    with stores.catalog.reading() as session:
        known = faces_by_id(session, [row["face_id"] for row in rows])
    pairs = [(known[r["face_id"]], r["distance"]) for r in rows if r["face_id"] in known]
    return _best_per_scene(stores, pairs, link, owner)


def scenes_with_person(
    stores: Stores, reference: str | int, link: Link, owner: str | None = None
) -> dict[str, FaceMatch]:
    """The scenes where a person (of `owner`'s library, when given) is seen, their faces
    nearest their centre first."""
    with stores.catalog.reading() as session:
        person = find_person(session, reference, owner)
        centre = as_vector(person.centre)
        faces = faces_of_person(session, person.id)
    if not faces:
        return {}
    gaps = distance(np.stack([as_vector(face.descriptor) for face in faces]), centre)
    return _best_per_scene(stores, list(zip(faces, gaps.tolist(), strict=True)), link, owner)


__all__ = [
    "FaceMatch",
    "FaceQueryError",
    "PhotoFace",
    "UnknownPersonError",
    "photo_face",
    "scenes_with_face",
    "scenes_with_person",
]
