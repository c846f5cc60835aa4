"""Reads and writes of catalog rows that the steps, the sensors and the CLI share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from heimdex_pipeline.catalog.models import (
    Scene,
    SearchModel,
    SpeechModel,
    Video,
    VideoState,
    VideoTranscript,
    VideoVectors,
    utcnow,
)
from heimdex_pipeline.catalog.people import drop_faces_of_video

IN_PROGRESS = (VideoState.UPLOADING, VideoState.VALIDATING, VideoState.PROCESSING)
TITLE_LENGTH = Video.__table__.c.title.type.length  # characters


def display_title(name: str) -> str:
    """A file name as a title the catalog holds: control characters (a NUL, a newline) shown
    as `?`, and a name longer than the column cut in the middle, its ending kept."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in name).strip() or "video"
    if len(cleaned) <= TITLE_LENGTH:
        return cleaned
    keep = TITLE_LENGTH - 1
    return f"{cleaned[: keep - 40]}…{cleaned[-40:]}"


class UnknownVideoError(LookupError):
    """A partition with no `Video` row: it was added without registering its source."""

    def __init__(self, video_id: str):
        super().__init__(
            f"video {video_id!r} is not in the catalog. Videos come in through `heimdex index "
            "PATH`, a file put under incoming/ in the object store, or POST /api/videos; a "
            "partition added by hand in the Dagster UI has no source to read. Remove it with "
            f"`heimdex delete {video_id}` and add the file one of those ways."
        )
        self.video_id = video_id


class VideoDeletedError(LookupError):
    """The video was deleted while a run still had it: a deleted video stays deleted."""

    def __init__(self, video_id: str):
        super().__init__(f"video {video_id} was deleted while it was being indexed")
        self.video_id = video_id


class OwnedByAnotherError(ValueError):
    """A source already indexed in another user's library."""

    def __init__(self, video_id: str, owner: str, wanted: str):
        super().__init__(
            f"video {video_id} is {owner}'s: it cannot be indexed for {wanted} too (delete it "
            f"first with `heimdex delete {video_id}`, or give {wanted} their own copy)"
        )


@dataclass(frozen=True)
class Registration:
    """A source to register: what `register_video` takes, for `register_videos`."""

    video_id: str
    source_uri: str
    title: str
    owner: str
    store_key: str | None = None


def register_video(
    session: Session,
    video_id: str,
    source_uri: str,
    title: str,
    *,
    owner: str,
    store_key: str | None = None,
) -> Video:
    """Create the video's row (state `uploading`) in `owner`'s library, or return the existing
    one (OwnedByAnotherError if it is someone else's); a deleted video that comes back starts
    over, as the new owner's. `store_key` is the source's key when it lives in the store."""
    wanted = Registration(video_id, source_uri, title, owner, store_key)
    return register_videos(session, [wanted])[video_id]


def register_videos(session: Session, wanted: Sequence[Registration]) -> dict[str, Video]:
    """`register_video` for many sources, with one read of the rows that exist and one write
    of the new ones (an inbox page of 1,000 keys is two statements, not 2,000)."""
    rows = videos_by_id(session, (w.video_id for w in wanted))
    for w in wanted:
        video = rows.get(w.video_id)
        if video is None:
            rows[w.video_id] = video = Video(
                id=w.video_id,
                owner=w.owner,
                source_uri=w.source_uri,
                title=display_title(w.title),
                store_key=w.store_key,
                state=VideoState.UPLOADING,
            )
            session.add(video)
        elif video.state is VideoState.DELETED:
            video.state, video.error_text, video.source_version = VideoState.UPLOADING, None, None
            video.owner, video.run_key = w.owner, None  # the old run is not this one's
            video.created_at = utcnow()  # a new life: the library lists it as new
        elif video.owner != w.owner:
            raise OwnedByAnotherError(w.video_id, video.owner, w.owner)
    session.flush()
    return rows


def get_video(session: Session, video_id: str) -> Video:
    video = session.get(Video, video_id)
    if video is None:
        raise UnknownVideoError(video_id)
    return video


def set_state(
    session: Session, video_id: str, state: VideoState, error_text: str | None = None
) -> None:
    """Move a video to `state`; `indexed` stamps indexed_at, other states clear it. A deleted
    video stays deleted (VideoDeletedError): only registering it again brings it back."""
    video = get_video(session, video_id)
    if video.state is VideoState.DELETED and state is not VideoState.DELETED:
        raise VideoDeletedError(video_id)
    video.state = state
    video.error_text = error_text
    video.indexed_at = utcnow() if state is VideoState.INDEXED else None


def scenes_of(session: Session, video_id: str) -> list[Scene]:
    return list(
        session.scalars(select(Scene).where(Scene.video_id == video_id).order_by(Scene.index))
    )


def replace_scenes(session: Session, video_id: str, scenes: list[Scene]) -> None:
    """The video's scenes become exactly `scenes`, in the caller's transaction (its faces,
    which were seen in the old scenes, go with them)."""
    drop_faces_of_video(session, video_id)
    session.execute(delete(Scene).where(Scene.video_id == video_id))
    session.flush()
    session.add_all(scenes)
    session.flush()


def forget_outputs(session: Session, video_id: str) -> None:
    """Drop the rows derived from a video (its scenes and faces, which tables hold its
    vectors and transcripts)."""
    drop_faces_of_video(session, video_id)
    session.execute(delete(Scene).where(Scene.video_id == video_id))
    session.execute(delete(VideoVectors).where(VideoVectors.video_id == video_id))
    session.execute(delete(VideoTranscript).where(VideoTranscript.video_id == video_id))


def videos_page(
    session: Session,
    limit: int,
    offset: int,
    include_deleted: bool = False,
    owner: str | None = None,
) -> tuple[list[Video], int]:
    """Videos newest first (of `owner`'s library, or every library), and how many in all."""
    query = select(Video)
    counted = select(func.count()).select_from(Video)
    if owner is not None:
        query = query.where(Video.owner == owner)
        counted = counted.where(Video.owner == owner)
    if not include_deleted:
        query = query.where(Video.state != VideoState.DELETED)
        counted = counted.where(Video.state != VideoState.DELETED)
    rows = session.scalars(
        query.order_by(Video.created_at.desc(), Video.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(session.scalar(counted) or 0)


def videos_by_id(
    session: Session, video_ids: Iterable[str], owner: str | None = None
) -> dict[str, Video]:
    """These videos' rows (of `owner`'s library only, when given)."""
    query = _of_videos(select(Video), video_ids, owner)
    return {} if query is None else {v.id: v for v in session.scalars(query)}


def _of_videos(query, video_ids: Iterable[str], owner: str | None):
    """The query of these videos (of `owner`'s only, when given); None when there are none."""
    wanted = list(set(video_ids))
    if not wanted:
        return None
    query = query.where(Video.id.in_(wanted))
    return query if owner is None else query.where(Video.owner == owner)


class VideoCard(NamedTuple):
    """What a search hit shows of its video: the columns alone, read without ORM rows (a
    query's hits read 20-100 of them, and building the rows was a tenth of a query's time)."""

    id: str
    owner: str
    title: str | None
    duration_s: float | None
    source_uri: str
    state: VideoState


def video_cards(
    session: Session, video_ids: Iterable[str], owner: str | None = None
) -> dict[str, VideoCard]:
    """These videos' cards (of `owner`'s library only, when given)."""
    columns = (getattr(Video, name) for name in VideoCard._fields)
    query = _of_videos(select(*columns), video_ids, owner)
    return {} if query is None else {row.id: VideoCard(*row) for row in session.execute(query)}


def videos_by_source(session: Session, source_uris: Sequence[str]) -> dict[str, Video]:
    if not source_uris:
        return {}
    found = session.scalars(select(Video).where(Video.source_uri.in_(list(source_uris))))
    return {video.source_uri: video for video in found}


def videos_with_store_keys(
    session: Session, prefix: str, after: str | None, upto: str | None
) -> dict[str, Video]:
    """Videos whose source key is under `prefix`, after `after` and up to `upto` (inclusive; no
    bound when None), by key: the rows a page of the store's listing should account for."""
    # Byte order, as S3 lists keys (PostgreSQL's default collation would not be); a plain range
    # on the indexed column, so a page costs the same whatever the table holds.
    key = (
        Video.store_key.collate("C")
        if session.bind.dialect.name == "postgresql"
        else Video.store_key
    )
    past_prefix = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    query = select(Video).where(key >= prefix, key < past_prefix)
    if after is not None:
        query = query.where(key > after)
    if upto is not None:
        query = query.where(key <= upto)
    return {video.store_key: video for video in session.scalars(query) if video.store_key}


def _add_once(session: Session, row: SearchModel | SpeechModel) -> None:
    """Add a model's row unless another run added it first: runs that index with a new model
    at the same moment all find it missing (CI saw four `heimdex index` processes fail three
    videos on the primary key), and the row they would write is the same."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        pass  # made by the other run, meanwhile: the same model id, the same row


def record_vectors(
    session: Session,
    video_id: str,
    model_id: str,
    identity: dict[str, object],
    scene_count: int,
) -> None:
    """Note that this model's table now holds the video's scenes."""
    if session.get(SearchModel, model_id) is None:
        _add_once(
            session,
            SearchModel(
                model_id=model_id,
                model=str(identity["model"]),
                pretrained=str(identity["pretrained"]),
                dim=int(identity["dim"]),  # type: ignore[arg-type]
                weights_sha256=str(identity["weights_sha256"]),
            ),
        )
    row = session.get(VideoVectors, (video_id, model_id))
    if row is None:
        session.add(VideoVectors(video_id=video_id, model_id=model_id, scene_count=scene_count))
    else:
        row.scene_count = scene_count
    session.flush()


def missing_from_model(session: Session, model_id: str) -> int:
    """How many indexed videos this model's table lacks."""
    has_vectors = exists().where(
        VideoVectors.video_id == Video.id, VideoVectors.model_id == model_id
    )
    return int(
        session.scalar(
            select(func.count())
            .select_from(Video)
            .where(Video.state == VideoState.INDEXED, ~has_vectors)
        )
        or 0
    )


def activate_complete_models(session: Session) -> list[str]:
    """Activate every inactive model (embedding or speech) whose table holds all indexed
    videos; their ids."""
    activated = []
    for model in session.scalars(select(SearchModel).where(SearchModel.activated_at.is_(None))):
        if missing_from_model(session, model.model_id) == 0:
            model.activated_at = utcnow()
            activated.append(model.model_id)
    for speech in session.scalars(select(SpeechModel).where(SpeechModel.activated_at.is_(None))):
        if missing_transcripts(session, speech.model_id) == 0:
            speech.activated_at = utcnow()
            activated.append(speech.model_id)
    session.flush()
    return activated


def missing_transcripts(session: Session, model_id: str) -> int:
    """How many indexed videos have no transcript (of any status) by this speech model."""
    has_transcript = exists().where(
        VideoTranscript.video_id == Video.id, VideoTranscript.model_id == model_id
    )
    return int(
        session.scalar(
            select(func.count())
            .select_from(Video)
            .where(Video.state == VideoState.INDEXED, ~has_transcript)
        )
        or 0
    )


def record_transcript(session: Session, video_id: str, model_id: str, setting: str, **facts):
    """Note the video's transcript by this speech model (status, reason, figures)."""
    if session.get(SpeechModel, model_id) is None:
        _add_once(session, SpeechModel(model_id=model_id, setting=setting))
    row = session.get(VideoTranscript, (video_id, model_id))
    if row is None:
        row = VideoTranscript(video_id=video_id, model_id=model_id)
        session.add(row)
    for name, value in facts.items():
        setattr(row, name, value)
    session.flush()


def mark_transcripts_failed(session: Session, video_id: str, reason: str) -> None:
    """The video's transcripts could not be made again: say so on its rows."""
    for row in session.scalars(select(VideoTranscript).where(VideoTranscript.video_id == video_id)):
        row.status, row.reason = "failed", reason
    session.flush()


def active_speech_model(session: Session) -> SpeechModel | None:
    """The speech model search serves: the most recently activated one."""
    return session.scalars(
        select(SpeechModel)
        .where(SpeechModel.activated_at.is_not(None))
        .order_by(SpeechModel.activated_at.desc())
        .limit(1)
    ).first()


def transcript_of(session: Session, video_id: str, model_id: str | None = None):
    """The video's transcript row by `model_id`, else by the active speech model, else its
    newest one (None when it has none)."""
    if model_id is None:
        active = active_speech_model(session)
        row = session.get(VideoTranscript, (video_id, active.model_id)) if active else None
        if row is not None:
            return row
        return session.scalars(
            select(VideoTranscript)
            .where(VideoTranscript.video_id == video_id)
            .order_by(VideoTranscript.updated_at.desc())
            .limit(1)
        ).first()
    return session.get(VideoTranscript, (video_id, model_id))


def active_model(session: Session) -> SearchModel | None:
    """The model search serves: the most recently activated one."""
    return session.scalars(
        select(SearchModel)
        .where(SearchModel.activated_at.is_not(None))
        .order_by(SearchModel.activated_at.desc())
        .limit(1)
    ).first()


def indexed_video_ids(session: Session) -> list[str]:
    """Every video `indexed` now."""
    return list(session.scalars(select(Video.id).where(Video.state == VideoState.INDEXED)))


def newest_model_for(session: Session, model: str, pretrained: str) -> SearchModel | None:
    """The newest search model recorded for these weights (None before any embedding)."""
    return session.scalars(
        select(SearchModel)
        .where(SearchModel.model == model, SearchModel.pretrained == pretrained)
        .order_by(SearchModel.created_at.desc())
    ).first()


def library_counts(session: Session) -> dict[str, object]:
    """The library at a glance: videos by state, scenes and hours of the indexed ones, and the
    scenes each model's vector table should hold (by its catalog rows)."""
    by_state = dict(session.execute(select(Video.state, func.count()).group_by(Video.state)).all())
    indexed = Video.state == VideoState.INDEXED
    seconds = session.scalar(select(func.sum(Video.duration_s)).where(indexed)) or 0.0
    scenes = session.scalar(select(func.count()).select_from(Scene).join(Video).where(indexed))
    per_model = dict(
        session.execute(
            select(VideoVectors.model_id, func.sum(VideoVectors.scene_count)).group_by(
                VideoVectors.model_id
            )
        ).all()
    )
    return {
        "videos_by_state": {state.value: int(by_state.get(state, 0)) for state in VideoState},
        "scenes_indexed": int(scenes or 0),
        "hours_indexed": float(seconds) / 3600,
        "vector_rows_by_model": {model: int(n or 0) for model, n in per_model.items()},
    }


def chosen_video_ids(
    session: Session,
    *,
    states: Sequence[VideoState] = (),
    since: datetime | None = None,
    video_ids: Sequence[str] = (),
    owner: str | None = None,
) -> list[str]:
    """The live (not deleted) videos that match every filter given: in one of `states`,
    registered at or after `since`, among `video_ids`, in `owner`'s library. No filter: all."""
    query = select(Video.id).where(Video.state != VideoState.DELETED)
    if states:
        query = query.where(Video.state.in_(list(states)))
    if since is not None:
        query = query.where(Video.created_at >= since)
    if video_ids:
        query = query.where(Video.id.in_(list(video_ids)))
    if owner is not None:
        query = query.where(Video.owner == owner)
    return list(session.scalars(query.order_by(Video.id)))
