"""Reads and writes of `Video` and `Scene` rows that the steps and the CLI share."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from heimdex_pipeline.catalog.models import Scene, Video, VideoState, utcnow


class UnknownVideoError(LookupError):
    """A partition with no `Video` row: it was added without registering its source."""


def register_video(session: Session, video_id: str, source_uri: str, title: str) -> Video:
    """Create the video's row (state `uploading`), or return the existing one."""
    video = session.get(Video, video_id)
    if video is None:
        video = Video(id=video_id, source_uri=source_uri, title=title, state=VideoState.UPLOADING)
        session.add(video)
        session.flush()
    return video


def get_video(session: Session, video_id: str) -> Video:
    video = session.get(Video, video_id)
    if video is None:
        raise UnknownVideoError(
            f"no catalog row for video {video_id!r}: register it with `heimdex index PATH`"
        )
    return video


def set_state(
    session: Session, video_id: str, state: VideoState, error_text: str | None = None
) -> None:
    """Move a video to `state`; `indexed` stamps indexed_at, other states clear it."""
    video = get_video(session, video_id)
    video.state = state
    video.error_text = error_text
    video.indexed_at = utcnow() if state is VideoState.INDEXED else None


def scenes_of(session: Session, video_id: str) -> list[Scene]:
    return list(
        session.scalars(select(Scene).where(Scene.video_id == video_id).order_by(Scene.index))
    )


def replace_scenes(session: Session, video_id: str, scenes: list[Scene]) -> None:
    """The video's scenes become exactly `scenes`, in the caller's transaction."""
    session.execute(delete(Scene).where(Scene.video_id == video_id))
    session.flush()
    session.add_all(scenes)
    session.flush()
