"""The one definition of the catalog tables. Alembic migrations are generated from this module."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Compared in byte order, as S3 lists keys: PostgreSQL's default collation would not be (SQLite's
# is already), and an index serves range queries only in its column's collation.
STORE_KEY = String(1024).with_variant(String(1024, collation="C"), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time read back from the catalog, in UTC: SQLite gives it without a zone (it was
    written in UTC), PostgreSQL in the session's zone."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class VideoState(enum.StrEnum):
    """Where a video is in its life: uploading → validating → processing → indexed | failed."""

    UPLOADING = "uploading"
    VALIDATING = "validating"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETED = "deleted"


OWNER = String(64)  # a user's name (the default owner needs no user row)


class User(Base):
    """Someone with a library of their own: their token is kept only as a SHA-256 (tokens are
    32 random bytes, so a fast hash is enough: there is no guessable password to stretch). An
    admin sees and manages every library. A revoked user keeps their videos; their token is dead."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(OWNER, unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    token_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Video(Base):
    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    # Whose video it is: only they (and admins) see it, its scenes, words, faces and media.
    owner: Mapped[str] = mapped_column(OWNER, index=True)
    source_uri: Mapped[str] = mapped_column(Text, unique=True)
    # What the source looked like when last read (ETag, or size and mtime): a change means a new
    # version of the video, to be probed and indexed again.
    source_version: Mapped[str | None] = mapped_column(String(128))
    # The source's key in the object store when it lives there (dropped under incoming/): the
    # inbox sensor compares a page of the listing with the rows in the same key range.
    store_key: Mapped[str | None] = mapped_column(STORE_KEY, index=True)
    # The run key under which the inbox sensor last asked for this video to be indexed: a tick
    # that sees the video again asks again only if no run carries that key.
    run_key: Mapped[str | None] = mapped_column(String(256))
    title: Mapped[str] = mapped_column(String(512))
    mime_type: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    display_aspect: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    rotation: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[VideoState] = mapped_column(
        Enum(
            VideoState,
            name="video_state",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda states: [s.value for s in states],
        ),
        default=VideoState.UPLOADING,
        index=True,
    )
    error_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    scenes: Mapped[list[Scene]] = relationship(
        back_populates="video",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Scene.index",
    )


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("video_id", "index"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    thumbnail_key: Mapped[str | None] = mapped_column(Text)
    sidecar_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    video: Mapped[Video] = relationship(back_populates="scenes")


class SearchModel(Base):
    """An embedding model with a vector table. Search serves the newest *active* one: a model is
    activated once its table holds every indexed video, so a model change never leaves search
    half-built."""

    __tablename__ = "search_models"

    model_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    pretrained: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)
    weights_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VideoVectors(Base):
    """A video's scenes are in this model's vector table."""

    __tablename__ = "video_vectors"

    video_id: Mapped[str] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(
        ForeignKey("search_models.model_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    scene_count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class SpeechModel(Base):
    """A speech (Whisper) model with a transcripts table. Search serves the newest *active*
    one: a model is activated once every indexed video has a transcript of it (whatever its
    status), so a model change keeps the old transcripts serving until the new ones are done."""

    __tablename__ = "speech_models"

    model_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    setting: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VideoTranscript(Base):
    """A video's transcript by one speech model: its status (transcribed, no audio, no speech,
    audio unreadable, failed), why, and what it holds; its lines are in the model's table."""

    __tablename__ = "video_transcripts"

    video_id: Mapped[str] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(
        ForeignKey("speech_models.model_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    audio_s: Mapped[float] = mapped_column(Float, default=0.0)
    speech_s: Mapped[float] = mapped_column(Float, default=0.0)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    real_time_factor: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Person(Base):
    """A person: the faces grouped as one (by the `people` asset), with the name a user gave.
    Their id and name stay as new faces join; `centre` is the mean of their faces' descriptors."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # People are grouped within one owner's library: one user's faces never join another's.
    owner: Mapped[str] = mapped_column(OWNER, index=True)
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(256), index=True)
    centre: Mapped[bytes] = mapped_column(LargeBinary)  # float32 descriptor
    face_count: Mapped[int] = mapped_column(Integer, default=0)
    video_count: Mapped[int] = mapped_column(Integer, default=0)
    cover_face_id: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Face(Base):
    """A face seen in a scene (sightings in several of its frames are one face): when, where in
    the frame, its crop in the object store, its descriptor, and the person it was placed in
    (none until the `people` asset places it). Its descriptor is also in the `faces_<model>`
    LanceDB table, which search by a photo reads."""

    __tablename__ = "faces"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(64))
    time_s: Mapped[float] = mapped_column(Float)
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    frame_w: Mapped[int] = mapped_column(Integer)
    frame_h: Mapped[int] = mapped_column(Integer)
    sightings: Mapped[int] = mapped_column(Integer, default=1)
    crop_key: Mapped[str] = mapped_column(Text)
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)  # float32
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
