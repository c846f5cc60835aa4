"""Find scenes by text or by an example image: the read side, on plain clients.

Search serves the *active* model: the newest one whose vector table holds every indexed video
(see `catalog.videos.activate_complete_models`). After a model change the previous model keeps
serving until `heimdex reembed` has filled the new table. Only videos `indexed` now are returned.
"""

from __future__ import annotations

import logging
import math
import stat
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from heimdex_pipeline.catalog.models import SearchModel, VideoState
from heimdex_pipeline.catalog.videos import (
    active_model,
    missing_from_model,
    newest_model_for,
    videos_by_id,
)
from heimdex_pipeline.clip.model import ClipEncoder, ModelIdentity, shared_clip
from heimdex_pipeline.search.links import Link, source_url, store_links
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.vectors import nearest, quote

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
MAX_OFFSET = 100_000
MAX_IMAGE_PIXELS = 50_000_000  # a 8K frame is 33 MP; beyond this it is not a video frame
MAX_QUERY_CHARS = 1000


class SearchError(ValueError):
    """A query that cannot be run as asked (a person's mistake: say what to change)."""


class NoSearchIndexError(SearchError):
    """Nothing can answer yet: no model has a complete vector table."""


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
    video_url: str | None = None  # plays from the scene's start (a #t= fragment)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResponse:
    hits: list[SearchHit]
    model: ModelIdentity
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model.as_dict(),
            "random_weights": self.model.is_random,
            "notes": self.notes,
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


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise SearchError(f"offset must be between 0 and {MAX_OFFSET}, not {offset}")


def open_query_image(source: str | Path | Image.Image) -> Image.Image:
    """An RGB image to search by; a clear SearchError for anything that is not one (a FIFO, a
    decompression bomb, a text file) without reading more than the header of a huge one."""
    if isinstance(source, Image.Image):
        picture = source
    else:
        path = Path(source)
        try:
            mode = path.stat().st_mode
        except OSError as error:
            raise SearchError(f"{path}: cannot read it ({error.strerror})") from None
        if not stat.S_ISREG(mode):
            raise SearchError(f"{path}: not a regular file")
        try:
            picture = Image.open(path)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise SearchError(f"{path}: not an image we can read ({error})") from None
    width, height = picture.size
    if width * height > MAX_IMAGE_PIXELS:
        raise SearchError(
            f"the image is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS:,} pixels"
        )
    try:
        return picture.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise SearchError(f"the image does not decode ({error})") from None


class Searcher:
    """Answers queries with the active model, loaded once and kept (the server keeps one)."""

    def __init__(
        self,
        stores: Stores,
        configured: tuple[str, str] | None = None,
        link: Link | None = None,
    ):
        self.stores = stores
        self.configured = configured  # (HEIMDEX_CLIP_MODEL, HEIMDEX_CLIP_PRETRAINED)
        self.link = link or store_links(stores.objects)
        self._encoding = threading.Lock()  # one query at a time on the model: no oversubscription
        self._catalog_checked = False

    def active(self) -> SearchModel:
        """The model search serves; CatalogNotReadyError or NoSearchIndexError if none can."""
        self._check_catalog()
        with self.stores.catalog.session() as session:
            model = active_model(session)
        if model is None:
            raise NoSearchIndexError(
                "nothing is searchable yet: no video has been indexed. Index some with "
                "`heimdex index PATH` (or put them under incoming/ with `dagster dev` running)."
            )
        return model

    def _check_catalog(self) -> None:
        if not self._catalog_checked:
            self.stores.catalog.ready()
            self._catalog_checked = True

    def encoder(self) -> ClipEncoder:
        """The active model's encoder (loaded on first use), checked to be the indexed one."""
        model = self.active()
        encoder = shared_clip(model.model, model.pretrained)
        if encoder.identity.model_id != model.model_id:
            raise NoSearchIndexError(
                f"the weights {model.pretrained} of {model.model} no longer match the index "
                f"({encoder.identity.model_id} != {model.model_id}): run `heimdex reembed`"
            )
        return encoder

    def notes(self, model: SearchModel) -> list[str]:
        """What a person should know about the model being served."""
        if self.configured is None or self.configured == (model.model, model.pretrained):
            return []
        name, weights = self.configured
        with self.stores.catalog.session() as session:
            pending = newest_model_for(session, name, weights)
            missing = missing_from_model(session, pending.model_id) if pending else None
        if pending is None:
            building = "has no index yet"
        else:
            building = f"is being built ({missing} indexed videos still to embed)"
        return [
            f"serving {model.model} / {model.pretrained}; the configured model {name} / "
            f"{weights} {building}: run `heimdex reembed` to build it. Search switches to it "
            "once it holds every indexed video."
        ]

    def search(
        self,
        text: str | None = None,
        image: str | Path | Image.Image | None = None,
        limit: int = 10,
        offset: int = 0,
        video_ids: list[str] | None = None,
        min_duration_s: float | None = None,
        max_duration_s: float | None = None,
    ) -> SearchResponse:
        """The scenes nearest to a text or an image, best first, of videos indexed now."""
        if (text is None) == (image is None):
            raise SearchError("give a text query or an image, not both and not neither")
        if text is not None and not text.strip():
            raise SearchError("the text query is empty")
        if text is not None and len(text) > MAX_QUERY_CHARS:
            raise SearchError(f"the text query is longer than {MAX_QUERY_CHARS} characters")
        check_page(limit, offset)
        where = build_filter(video_ids, min_duration_s, max_duration_s)
        picture = open_query_image(image) if image is not None else None
        model = self.active()
        encoder = self.encoder()
        with self._encoding:
            if picture is not None:
                query = encoder.encode_images([picture])[0]
            else:
                query = encoder.encode_texts([text or ""])[0]
        table = self.stores.vectors.scenes_table(model.model_id, model.dim, create=False)
        rows, videos = self._indexed_rows(table, query, where, offset + limit)
        hits = [
            SearchHit(
                rank=rank,
                score=round(1.0 - float(row["_distance"]), 6),
                video_id=row["video_id"],
                video_title=videos[row["video_id"]].title,
                video_duration_s=videos[row["video_id"]].duration_s,
                scene_id=row["scene_id"],
                scene_index=int(row["scene_index"]),
                start_s=float(row["start_s"]),
                end_s=float(row["end_s"]),
                thumbnail_url=self.link(row["thumbnail_key"]),
                video_url=source_url(
                    self.link, self.stores.objects, videos[row["video_id"]], float(row["start_s"])
                ),
            )
            for rank, row in enumerate(rows[offset : offset + limit], start=offset + 1)
        ]
        return SearchResponse(hits, encoder.identity, self.notes(model))

    def _indexed_rows(self, table, query, where: str | None, wanted: int):
        """The nearest rows of videos that are `indexed` now: asks LanceDB for more until enough
        are left after dropping the others (a video being re-indexed, failed or deleted)."""
        fetch = max(wanted, 10)
        while True:
            rows = nearest(table, query, where).limit(fetch).to_list()
            with self.stores.catalog.session() as session:
                found = videos_by_id(session, {row["video_id"] for row in rows})
            live = {
                video_id: video
                for video_id, video in found.items()
                if video.state is VideoState.INDEXED
            }
            kept = [row for row in rows if row["video_id"] in live]
            if len(kept) >= wanted or len(rows) < fetch or fetch >= 16 * wanted + 1000:
                return kept, live
            fetch *= 4
