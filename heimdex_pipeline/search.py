"""Find scenes by text or by an example image, and list videos: the API behind the CLI."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from heimdex_pipeline.catalog.models import Scene, Video
from heimdex_pipeline.resources import (
    CatalogResource,
    ClipResource,
    ObjectStoreResource,
    VectorStoreResource,
)
from heimdex_pipeline.resources.clip import ModelIdentity
from heimdex_pipeline.resources.vector_store import nearest, quote


class SearchError(ValueError):
    """A query that cannot be run as asked."""


@dataclass(frozen=True)
class SearchHit:
    rank: int
    score: float  # cosine similarity
    video_id: str
    video_title: str | None
    video_duration_s: float | None
    scene_id: str
    scene_index: int
    start_s: float
    end_s: float
    thumbnail_url: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResponse:
    hits: list[SearchHit]
    model: ModelIdentity

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model.as_dict(),
            "random_weights": self.model.is_random,
            "hits": [hit.as_dict() for hit in self.hits],
        }


def build_filter(
    video_ids: list[str] | None = None,
    min_duration_s: float | None = None,
    max_duration_s: float | None = None,
) -> str | None:
    """A LanceDB `where` clause; every user value is quoted or checked to be a finite number."""
    clauses = []
    if video_ids:
        clauses.append(f"video_id IN ({', '.join(quote(v) for v in video_ids)})")
    for bound, operator in ((min_duration_s, ">="), (max_duration_s, "<=")):
        if bound is None:
            continue
        value = float(bound)
        if not math.isfinite(value) or value < 0:
            raise SearchError(f"scene duration bounds must be finite and >= 0, not {bound!r}")
        clauses.append(f"(end_s - start_s) {operator} {value!r}")
    return " AND ".join(clauses) or None


def search_scenes(
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
    clip: ClipResource,
    text: str | None = None,
    image: str | Path | Image.Image | None = None,
    limit: int = 10,
    offset: int = 0,
    video_ids: list[str] | None = None,
    min_duration_s: float | None = None,
    max_duration_s: float | None = None,
) -> SearchResponse:
    """The scenes nearest to a text or an image, best first."""
    if (text is None) == (image is None):
        raise SearchError("give exactly one of a text query or an image")
    if limit < 1 or offset < 0:
        raise SearchError("limit must be >= 1 and offset >= 0")
    encoder = clip.encoder()
    if image is not None:
        picture = image if isinstance(image, Image.Image) else _open_image(image)
        query = encoder.encode_images([picture])[0]
    else:
        query = encoder.encode_texts([text or ""])[0]
    identity = encoder.identity
    try:
        table = vectors.store().scenes_table(identity.model_id, identity.dim, create=False)
    except LookupError:
        return SearchResponse([], identity)
    where = build_filter(video_ids, min_duration_s, max_duration_s)
    rows = nearest(table, query, where).limit(limit).offset(offset).to_list()
    with catalog.session() as session:
        wanted = {row["video_id"] for row in rows}
        found = session.scalars(select(Video).where(Video.id.in_(wanted))).all() if wanted else []
        by_id = {video.id: (video.title, video.duration_s) for video in found}
    store = objects.store()
    hits = []
    for rank, row in enumerate(rows, start=offset + 1):
        title, duration = by_id.get(row["video_id"], (None, None))
        key = row["thumbnail_key"]
        hits.append(
            SearchHit(
                rank=rank,
                score=round(1.0 - float(row["_distance"]), 6),
                video_id=row["video_id"],
                video_title=title,
                video_duration_s=duration,
                scene_id=row["scene_id"],
                scene_index=int(row["scene_index"]),
                start_s=float(row["start_s"]),
                end_s=float(row["end_s"]),
                thumbnail_url=store.presigned_get_url(key) if key else None,
            )
        )
    return SearchResponse(hits, identity)


def _open_image(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as picture:
            return picture.convert("RGB")
    except (OSError, ValueError) as error:
        raise SearchError(f"{path}: not an image we can read ({error})") from None


@dataclass(frozen=True)
class VideoSummary:
    video_id: str
    title: str
    state: str
    duration_s: float | None
    scene_count: int
    error_text: str | None
    thumbnail_url: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def list_videos(catalog: CatalogResource, objects: ObjectStoreResource) -> list[VideoSummary]:
    """Every video with its state, scene count and first thumbnail, in three queries in all."""
    with catalog.session() as session:
        videos = session.scalars(select(Video).order_by(Video.created_at, Video.id)).all()
        counts = dict(
            session.execute(select(Scene.video_id, func.count()).group_by(Scene.video_id)).all()
        )
        firsts = dict(
            session.execute(
                select(Scene.video_id, Scene.thumbnail_key).where(Scene.index == 0)
            ).all()
        )
    store = objects.store()
    return [
        VideoSummary(
            video_id=video.id,
            title=video.title,
            state=video.state.value,
            duration_s=video.duration_s,
            scene_count=counts.get(video.id, 0),
            error_text=video.error_text,
            thumbnail_url=store.presigned_get_url(firsts[video.id])
            if firsts.get(video.id)
            else None,
        )
        for video in videos
    ]
