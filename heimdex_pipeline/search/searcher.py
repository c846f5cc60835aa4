"""Find scenes by text or by an example image: the read side, on plain clients.

A text query searches in one of three modes: `visual` (CLIP: what the pictures show), `speech`
(the transcripts' full-text index: what is said) or `hybrid` (the default: both rankings fused
by reciprocal rank). Every hit says why it matched and where to play it from.

Search serves the *active* models: the newest whose table holds every indexed video (see
`catalog.videos.activate_complete_models`). After a model change the previous model keeps
serving until its successor has filled its table. Only videos `indexed` now are returned.

Every search is of one owner's library when an `owner` is given (what a user's request asks):
the owner is a pre-filter in every LanceDB query, so a page of k hits is k of theirs, never
fewer because another library's rows ranked higher; the catalog is asked again before a hit
is shown. `owner=None` searches every library (an admin, the operator's CLI).
"""

from __future__ import annotations

import logging
import math
import stat
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from heimdex_pipeline.catalog.models import Scene, SearchModel, VideoState
from heimdex_pipeline.catalog.videos import (
    active_model,
    missing_from_model,
    newest_model_for,
    video_cards,
)
from heimdex_pipeline.clip.model import ClipEncoder, ModelIdentity, shared_clip
from heimdex_pipeline.search.encoding import QueryEncoder
from heimdex_pipeline.search.faces import (
    MATCH_DISTANCE,
    FaceMatch,
    FaceQueryError,
    UnknownPersonError,
    photo_face,
    scenes_with_face,
    scenes_with_person,
)
from heimdex_pipeline.search.links import Link, source_url, store_links
from heimdex_pipeline.search.speech import SpeechMatch, match_of, speech_ranking, speech_table
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.vectors import all_of, nearest, owner_filter, quote

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
MAX_OFFSET = 100_000
MAX_IMAGE_PIXELS = 50_000_000  # a 8K frame is 33 MP; beyond this it is not a video frame
MAX_QUERY_CHARS = 1000
MODES = ("visual", "speech", "hybrid")
# Reciprocal-rank fusion: a scene's hybrid score is the sum over rankings of w / (k + rank).
# Plain RRF (k = 60 for both, equal weights) let CLIP's broad text ranking reorder the speech
# hits by up to a dozen places on the spoken corpus; a small k and a double weight for speech
# keep a phrase that is said on top (the pictures reorder only near-ties, and fill in after
# the speech hits), measured in benchmarks/speech.py.
RRF_K = {"visual": 60, "speech": 5}
RRF_WEIGHTS = {"visual": 1.0, "speech": 2.0}
HYBRID_DEPTH = 50  # candidates taken from each ranking before fusing
# what a visual hit needs of its row (not the vector: converting it cost more than the rest)
HIT_COLUMNS = ["scene_id", "video_id", "scene_index", "start_s", "end_s", "thumbnail_key"]


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
    video_owner: str
    scene_id: str
    scene_index: int
    start_s: float
    end_s: float
    thumbnail_url: str | None
    video_url: str | None = None  # plays from play_from_s (a #t= fragment)
    play_from_s: float = 0.0  # where the matched words start, else the scene's start
    matched: list[str] = field(default_factory=list)  # "visual", "speech"
    visual_score: float | None = None  # cosine similarity, when the pictures matched
    speech: SpeechMatch | None = None  # the line said, when the transcript matched
    face: FaceMatch | None = None  # the face seen, when a face or a person was asked for

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResponse:
    hits: list[SearchHit]
    model: ModelIdentity | None  # CLIP, when it answered
    notes: list[str] = field(default_factory=list)
    mode: str = "visual"
    speech_model: str | None = None  # the transcripts' model, when they answered
    faces_in_photo: int | None = None  # when searched by a photo of a face
    # the query's encoding, when CLIP answered: cached, batch size, queued and encode times
    timing: dict[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "timing": self.timing,
            "faces_in_photo": self.faces_in_photo,
            "model": self.model.as_dict() if self.model else None,
            "speech_model": self.speech_model,
            "random_weights": bool(self.model and self.model.is_random),
            "notes": self.notes,
            "hits": [hit.as_dict() for hit in self.hits],
        }


def build_filter(
    video_ids: list[str] | None = None,
    min_duration_s: float | None = None,
    max_duration_s: float | None = None,
    start: str = "start_s",
    end: str = "end_s",
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
        clauses.append(f"({end} - {start}) {operator} {value!r}")
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


@dataclass(frozen=True)
class _Who:
    """The scenes a face photo or a person is seen in, and what to say about the query."""

    matches: dict[str, FaceMatch]
    notes: list[str]
    faces_in_photo: int | None


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
        # per model: concurrent queries encoded together, repeated ones cached (encoding.py)
        self._queries: dict[str, QueryEncoder] = {}
        self._queries_lock = threading.Lock()
        self._catalog_checked = False

    def active(self) -> SearchModel:
        """The model search serves; CatalogNotReadyError or NoSearchIndexError if none can."""
        self._check_catalog()
        with self.stores.catalog.reading() as session:
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

    def encoder(self, model: SearchModel | None = None) -> ClipEncoder:
        """The active model's encoder (loaded on first use), checked to be the indexed one."""
        model = model or self.active()
        encoder = shared_clip(model.model, model.pretrained)
        if encoder.identity.model_id != model.model_id:
            raise NoSearchIndexError(
                f"the weights {model.pretrained} of {model.model} no longer match the index "
                f"({encoder.identity.model_id} != {model.model_id}): run `heimdex reembed`"
            )
        return encoder

    def query_encoder(self, model: SearchModel | None = None) -> QueryEncoder:
        """The batching, caching encoder of the active model's queries (one per model)."""
        encoder = self.encoder(model)
        model_id = encoder.identity.model_id
        with self._queries_lock:
            if model_id not in self._queries:
                self._queries[model_id] = QueryEncoder(encoder)
            return self._queries[model_id]

    def notes(self, model: SearchModel) -> list[str]:
        """What a person should know about the model being served."""
        if self.configured is None or self.configured == (model.model, model.pretrained):
            return []
        name, weights = self.configured
        with self.stores.catalog.reading() as session:
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
        mode: str = "hybrid",
        face: str | Path | Image.Image | None = None,
        person: str | None = None,
        face_distance: float = MATCH_DISTANCE,
        owner: str | None = None,
    ) -> SearchResponse:
        """The scenes that best match a text (in `mode`) or an image, best first, of videos
        indexed now (of `owner`'s library, when given); with a `face` (a photo) or a `person`,
        only the scenes where they are seen (alone: nearest face first; with a text or an
        image: ranked by it)."""
        if text is not None and image is not None:
            raise SearchError("give a text query or an image, not both")
        if face is not None and person is not None:
            raise SearchError("give a face photo or a person, not both")
        who = None
        if face is not None or person is not None:
            who = self._who(face, person, face_distance, video_ids, owner)
            check_page(limit, offset)
            if (text is None and image is None) or not who.matches:
                return self._faces_only(who, offset, limit, owner)
            video_ids = sorted({m.video_id for m in who.matches.values()})
        if text is None and image is None:
            raise SearchError("give a text query, an image, a face photo or a person")
        if text is not None and not text.strip():
            raise SearchError("the text query is empty")
        if text is not None and len(text) > MAX_QUERY_CHARS:
            raise SearchError(f"the text query is longer than {MAX_QUERY_CHARS} characters")
        if mode not in MODES:
            raise SearchError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        check_page(limit, offset)
        filters = (video_ids, min_duration_s, max_duration_s)
        where = all_of(build_filter(*filters), owner_filter(owner))
        picture = open_query_image(image) if image is not None else None
        if picture is not None:
            mode = "visual"
        wanted = offset + limit
        rankings: dict[str, list[dict]] = {}
        notes: list[str] = []
        identity, speech_model, timing = None, None, None
        known: dict = {}  # the rankings' videos, as the catalog answered (live, the owner's)
        lines = None  # the transcripts' table, when what is said is searched
        if mode in ("speech", "hybrid"):
            self._check_catalog()
            lines, speech_model = speech_table(self.stores)
            if lines is None and mode == "speech":
                raise NoSearchIndexError(
                    "nothing said is searchable yet: no video has a transcript. Index videos "
                    "with HEIMDEX_ASR_MODEL set (tiny.en by default)."
                )
        # two rankings to fuse take more candidates from each; the pictures alone, only a page
        depth = max(wanted, HYBRID_DEPTH) if mode == "hybrid" and lines is not None else wanted
        if mode in ("visual", "hybrid"):
            model = self.active()
            queries = self.query_encoder(model)
            encoded = queries.image(picture) if picture is not None else queries.text(text or "")
            query, timing = encoded.vector, encoded.timing()
            encoder = queries.encoder
            table = self.stores.vectors.scenes_reader(model.model_id, model.dim)
            rankings["visual"], known = self._indexed_rows(table, query, where, depth, owner)
            identity = encoder.identity
            notes += self.notes(model)
        if mode == "hybrid" and lines is None:
            notes.append("no transcripts yet: the pictures alone answered")
        if lines is not None:
            speech_where = all_of(
                build_filter(*filters, start="scene_start_s", end="scene_end_s"),
                owner_filter(owner),
            )
            rankings["speech"], heard = self._indexed_speech(
                lines, text or "", speech_where, depth, owner
            )
            known = {**known, **heard}
        if who is not None:  # only the scenes where the face or person is seen
            rankings = {
                name: [row for row in rows if row["scene_id"] in who.matches]
                for name, rows in rankings.items()
            }
            notes += who.notes
        hits = self._fuse(rankings, text or "", mode, offset, limit, who, owner, known)
        faces_in_photo = who.faces_in_photo if who is not None else None
        return SearchResponse(hits, identity, notes, mode, speech_model, faces_in_photo, timing)

    def _who(
        self, face, person, threshold: float, video_ids: list[str] | None, owner: str | None
    ) -> _Who:
        """The scenes where the photo's face or the person is seen (of `video_ids`, if given;
        of `owner`'s library, if given)."""
        self._check_catalog()
        notes: list[str] = []
        faces_in_photo = None
        if face is not None:
            picture = open_query_image(face)
            try:
                found = photo_face(picture, face if isinstance(face, str | Path) else "the photo")
            except FaceQueryError as error:
                raise SearchError(str(error)) from None
            faces_in_photo = found.faces_in_photo
            notes += [found.note] if found.note else []
            where = all_of(build_filter(video_ids), owner_filter(owner))
            matches = scenes_with_face(
                self.stores, found.descriptor, self.link, where, threshold, owner
            )
        else:
            try:
                matches = scenes_with_person(self.stores, str(person), self.link, owner)
            except UnknownPersonError as error:
                raise SearchError(str(error)) from None
        if video_ids:
            allowed = set(video_ids)
            matches = {k: m for k, m in matches.items() if m.video_id in allowed}
        return _Who(matches, notes, faces_in_photo)

    def _faces_only(self, who: _Who, offset: int, limit: int, owner: str | None) -> SearchResponse:
        """The scenes where the face or person is seen, nearest first."""
        rows = [
            {"scene_id": scene_id, "video_id": m.video_id, "_score": round(1.0 - m.distance, 6)}
            for scene_id, m in who.matches.items()
        ]
        hits = self._fuse({"face": rows}, "", "face", offset, limit, who, owner)
        return SearchResponse(hits, None, who.notes, "face", None, who.faces_in_photo)

    def _indexed_speech(self, table, text: str, where: str | None, wanted: int, owner: str | None):
        """The best line per scene, of videos `indexed` now (of `owner`'s, when given), and
        those videos' rows."""
        fetch = max(2 * wanted, 40)
        while True:
            rows = speech_ranking(table, text, where, fetch)
            with self.stores.catalog.reading() as session:
                found = video_cards(session, {row["video_id"] for row in rows}, owner)
            live = {v: video for v, video in found.items() if video.state is VideoState.INDEXED}
            kept = [row for row in rows if row["video_id"] in live]
            if len(kept) >= wanted or len(rows) < wanted or fetch >= 16 * wanted + 1000:
                return kept, live
            fetch *= 4

    def _fuse(
        self,
        rankings: dict[str, list[dict]],
        text: str,
        mode: str,
        offset: int,
        limit: int,
        who: _Who | None = None,
        owner: str | None = None,
        known: dict | None = None,
    ) -> list[SearchHit]:
        """One ranking of scenes: a single mode's as it is, two fused by reciprocal rank (only
        scenes of `owner`'s videos, when given, whatever the rankings hold)."""
        scores: dict[str, float] = {}
        by_mode: dict[str, dict[str, dict]] = {}
        for name, rows in rankings.items():
            by_mode[name] = {}
            for rank, row in enumerate(rows, start=1):
                by_mode[name].setdefault(row["scene_id"], row)
                if len(rankings) == 1:
                    own = 1.0 - row["_distance"] if name == "visual" else row["_score"]
                    scores.setdefault(row["scene_id"], float(own))
                else:
                    share = RRF_WEIGHTS[name] / (RRF_K[name] + rank)
                    scores[row["scene_id"]] = scores.get(row["scene_id"], 0.0) + share
        order = sorted(scores, key=lambda scene_id: -scores[scene_id])[offset : offset + limit]
        if not order:
            return []
        with self.stores.catalog.reading() as session:
            columns = (Scene.video_id, Scene.index, Scene.start_s, Scene.end_s, Scene.thumbnail_key)
            scenes = {
                scene_id: tuple(rest)
                for scene_id, *rest in session.execute(
                    select(Scene.id, *columns).where(Scene.id.in_(order))
                )
            }
            for scene_id in order:  # a table row whose scene the catalog does not hold (yet)
                if scene_id not in scenes and scene_id in by_mode.get("visual", {}):
                    row = by_mode["visual"][scene_id]
                    scenes[scene_id] = (
                        row["video_id"], row["scene_index"], row["start_s"], row["end_s"],
                        row["thumbnail_key"],
                    )  # fmt: skip
                elif scene_id not in scenes and scene_id in by_mode.get("speech", {}):
                    row = by_mode["speech"][scene_id]
                    scenes[scene_id] = (
                        row["video_id"], row["scene_index"], row["scene_start_s"],
                        row["scene_end_s"], None,
                    )  # fmt: skip
            wanted = {scene[0] for scene in scenes.values()}
            videos = {v: known[v] for v in wanted if known and v in known}
            videos |= video_cards(session, wanted - set(videos), owner)
        hits = []
        for rank, scene_id in enumerate(order, start=offset + 1):
            if scene_id not in scenes or scenes[scene_id][0] not in videos:  # re-indexed since
                continue
            video_id, index, start_s, end_s, thumbnail_key = scenes[scene_id]
            video = videos[video_id]
            visual = by_mode.get("visual", {}).get(scene_id)
            said = by_mode.get("speech", {}).get(scene_id)
            speech = match_of(said, text) if said is not None else None
            seen = who.matches.get(scene_id) if who is not None else None
            play_from = speech.start_s if speech else seen.time_s if seen else start_s
            hits.append(
                SearchHit(
                    rank=rank,
                    score=round(scores[scene_id], 6),
                    video_id=video.id,
                    video_title=video.title,
                    video_duration_s=video.duration_s,
                    video_owner=video.owner,
                    scene_id=scene_id,
                    scene_index=index,
                    start_s=start_s,
                    end_s=end_s,
                    thumbnail_url=self.link(thumbnail_key),
                    video_url=source_url(self.link, self.stores.objects, video, play_from),
                    play_from_s=round(play_from, 3),
                    matched=[
                        name
                        for name, row in (("visual", visual), ("speech", said), ("face", seen))
                        if row
                    ],
                    visual_score=round(1.0 - float(visual["_distance"]), 6) if visual else None,
                    speech=speech,
                    face=seen,
                )
            )
        return hits

    def _indexed_rows(self, table, query, where: str | None, wanted: int, owner: str | None):
        """The nearest rows of videos that are `indexed` now (and `owner`'s, when given): asks
        LanceDB for more until enough are left after dropping the others (a video being
        re-indexed, failed or deleted)."""
        fetch = max(wanted, 10)
        while True:
            rows = nearest(table, query, where).select(HIT_COLUMNS).limit(fetch).to_list()
            with self.stores.catalog.reading() as session:
                found = video_cards(session, {row["video_id"] for row in rows}, owner)
            live = {
                video_id: video
                for video_id, video in found.items()
                if video.state is VideoState.INDEXED
            }
            kept = [row for row in rows if row["video_id"] in live]
            if len(kept) >= wanted or len(rows) < fetch or fetch >= 16 * wanted + 1000:
                return kept, live
            fetch *= 4
