"""The answers of the HTTP API, as Pydantic models: `/openapi.json` documents every one, so a
client can be generated from it. Where the search layer's dataclasses are the answer's parts
(a hit, a video of a page, a scene), they are used as they are."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from heimdex_pipeline.search.listing import SceneDetail, VideoSummary
from heimdex_pipeline.search.searcher import SearchHit


class ModelInfo(BaseModel):
    """The embedding model that answered."""

    model: str
    pretrained: str
    model_id: str
    dim: int
    weights_sha256: str
    random_weights: bool


class QueryTiming(BaseModel):
    """What encoding the query cost (concurrent queries share one forward pass)."""

    cached: bool = Field(description="the query's vector came from the cache: no encoding")
    batch_size: int = Field(description="queries encoded in the same pass (0 when cached)")
    queued_ms: float = Field(description="waiting for the pass")
    encode_ms: float = Field(description="the pass")


class SearchAnswer(BaseModel):
    mode: Literal["visual", "speech", "hybrid", "face"] = Field(
        description="`face`: a face photo or a person alone, nearest face first"
    )
    faces_in_photo: int | None = Field(
        None, description="how many faces the photo shows, when searched by one (the largest)"
    )
    model: ModelInfo | None = Field(description="the CLIP model, when the pictures were searched")
    speech_model: str | None = Field(description="the speech model, when transcripts were searched")
    random_weights: bool = Field(description="true when the model's weights are random")
    timing: QueryTiming | None = Field(None, description="the query's encoding, when CLIP ran")
    notes: list[str]
    hits: list[SearchHit]


class VideoPage(BaseModel):
    total: int
    limit: int
    offset: int
    videos: list[VideoSummary]


class TranscriptInfo(BaseModel):
    """The video's transcript: its status (transcribed, no audio, no speech, audio
    unreadable, failed), why, and what it holds; the lines are on each scene."""

    model_id: str
    status: str
    reason: str | None
    language: str | None
    speech_s: float
    words: int
    real_time_factor: float | None


class VideoDetail(BaseModel):
    video_id: str
    title: str
    owner: str = Field(description="whose library the video is in")
    state: str
    error_text: str | None
    duration_s: float | None
    frame_count: int | None
    width: int | None
    height: int | None
    fps: float | None
    sha256: str | None
    created_at: str
    indexed_at: str | None
    source_uri: str
    video_url: str | None
    transcript: TranscriptInfo | None
    scenes: list[SceneDetail]


class Upload(BaseModel):
    video_id: str
    key: str = Field(description="where the video waits under incoming/ for the inbox sensor")
    state: Literal["uploading"]
    size_bytes: int
    owner: str = Field(description="whose library it goes in: the uploader's")


class Deleted(BaseModel):
    video_id: str
    state: Literal["deleted"]


class HealthCheck(BaseModel):
    status: Literal["ok", "down", "unavailable"]
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, HealthCheck]


class Problem(BaseModel):
    """Why a request was refused (4xx) or could not be answered (5xx)."""

    detail: str


# Every route behind the token can answer these.
GUARDED = {
    401: {"model": Problem, "description": "no token, or a wrong or revoked one"},
    422: {"description": "a parameter out of bounds, named"},
}
# Every route that changes something, or takes a body, can answer this (serve/origins.py).
CROSS_SITE = {
    403: {"model": Problem, "description": "sent from another site without a bearer token"},
}
