"""The library, read: a page of videos newest first with the total, and one video with every
scene."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import case, func, select

from heimdex_pipeline.catalog.models import Scene, Video
from heimdex_pipeline.catalog.people import faces_of_video, people_by_id
from heimdex_pipeline.catalog.videos import (
    scenes_of,
    transcript_of,
    videos_page,
)
from heimdex_pipeline.search.faces import FaceMatch, face_match
from heimdex_pipeline.search.links import Link, source_url, store_links
from heimdex_pipeline.search.searcher import check_page
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.keys import transcript_key
from heimdex_pipeline.stores.objects import ObjectNotFoundError


@dataclass(frozen=True)
class VideoSummary:
    video_id: str
    title: str
    owner: str
    state: str
    duration_s: float | None
    scene_count: int
    error_text: str | None
    created_at: str
    thumbnail_url: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class VideoPage:
    videos: list[VideoSummary]
    total: int
    limit: int
    offset: int

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "limit": self.limit,
            "offset": self.offset,
            "videos": [v.as_dict() for v in self.videos],
        }


def list_videos(
    stores: Stores,
    limit: int = 50,
    offset: int = 0,
    link: Link | None = None,
    owner: str | None = None,
) -> VideoPage:
    """A page of videos (of `owner`'s library, else every library), newest first, with the
    total: three queries whatever the page size."""
    check_page(limit, offset)
    link = link or store_links(stores.objects)
    with stores.catalog.reading() as session:
        videos, total = videos_page(session, limit, offset, owner=owner)
        first_thumbnail = func.max(case((Scene.index == 0, Scene.thumbnail_key)))
        per_video = session.execute(
            select(Scene.video_id, func.count(), first_thumbnail)
            .where(Scene.video_id.in_([video.id for video in videos]))
            .group_by(Scene.video_id)
        ).all()
    counts = {video_id: count for video_id, count, _ in per_video}
    firsts = {video_id: key for video_id, _, key in per_video}
    return VideoPage(
        videos=[
            VideoSummary(
                video_id=video.id,
                title=video.title,
                owner=video.owner,
                state=video.state.value,
                duration_s=video.duration_s,
                scene_count=counts.get(video.id, 0),
                error_text=video.error_text,
                created_at=video.created_at.isoformat(),
                thumbnail_url=link(firsts.get(video.id)),
            )
            for video in videos
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


@dataclass(frozen=True)
class TranscriptLine:
    """A line said in a scene (part of a segment, split at the scene's cuts)."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class SceneDetail:
    scene_id: str
    index: int
    start_s: float
    end_s: float
    thumbnail_url: str | None
    transcript: list[TranscriptLine] = field(default_factory=list)
    faces: list[FaceMatch] = field(default_factory=list)  # who is seen in it

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class VideoDetail:
    video: dict[str, object]
    scenes: list[SceneDetail]

    def as_dict(self) -> dict[str, object]:
        return {**self.video, "scenes": [s.as_dict() for s in self.scenes]}


def video_detail(
    stores: Stores, video_id: str, link: Link | None = None, owner: str | None = None
) -> VideoDetail:
    """One video with every scene; LookupError if there is no such video (in `owner`'s
    library, when given: another's video is not there, exactly as a missing one)."""
    link = link or store_links(stores.objects)
    with stores.catalog.reading() as session:
        video = session.get(Video, video_id)
        if video is None or (owner is not None and video.owner != owner):
            raise LookupError(f"no video {video_id!r}")
        rows = scenes_of(session, video_id)
        faces = faces_of_video(session, video_id)
        people = people_by_id(session, {face.person_id for face in faces if face.person_id})
        names = {person_id: person.name for person_id, person in people.items()}
        seen: dict[str, list[FaceMatch]] = {}
        for face in faces:
            match = face_match(face, names.get(face.person_id), 0.0, link)
            seen.setdefault(face.scene_id, []).append(match)
        said = transcript_of(session, video_id)
        transcript = (
            {
                "model_id": said.model_id,
                "status": said.status,
                "reason": said.reason,
                "language": said.language,
                "speech_s": said.speech_s,
                "words": said.word_count,
                "real_time_factor": said.real_time_factor,
            }
            if said is not None
            else None
        )
        facts = {
            "video_id": video.id,
            "title": video.title,
            "owner": video.owner,
            "state": video.state.value,
            "error_text": video.error_text,
            "duration_s": video.duration_s,
            "frame_count": video.frame_count,
            "width": video.width,
            "height": video.height,
            "fps": video.fps,
            "sha256": video.sha256,
            "created_at": video.created_at.isoformat(),
            "indexed_at": video.indexed_at.isoformat() if video.indexed_at else None,
            "source_uri": video.source_uri,
            "video_url": source_url(link, stores.objects, video),
            "transcript": transcript,
        }
    lines = _lines_by_scene(stores, video_id, transcript["model_id"] if transcript else None)
    return VideoDetail(
        video=facts,
        scenes=[
            SceneDetail(
                scene_id=row.id,
                index=row.index,
                start_s=row.start_s,
                end_s=row.end_s,
                thumbnail_url=link(row.thumbnail_key),
                transcript=lines.get(row.id, []),
                faces=seen.get(row.id, []),
            )
            for row in rows
        ],
    )


def _lines_by_scene(
    stores: Stores, video_id: str, model_id: str | None
) -> dict[str, list[TranscriptLine]]:
    """The transcript's lines, by scene, from its object in the store (none if it has none)."""
    if model_id is None:
        return {}
    try:
        document = json.loads(stores.objects.get_bytes(transcript_key(video_id, model_id)))
    except ObjectNotFoundError:
        return {}
    lines: dict[str, list[TranscriptLine]] = {}
    for line in document.get("lines", []):
        lines.setdefault(line["scene_id"], []).append(
            TranscriptLine(round(line["start_s"], 3), round(line["end_s"], 3), line["text"])
        )
    return lines
