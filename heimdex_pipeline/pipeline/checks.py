"""Asset checks, one video at a time: the ones that catch "indexed but no thumbnails".

Checks observe: each returns what it found and never writes a row or an object. The step that
runs a blocking check decides what a failure means for the video (see `chain.py`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from heimdex_pipeline.catalog.videos import get_video, scenes_of
from heimdex_pipeline.clip.vectors_io import parquet_to_vectors
from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.media.thumbnail import expected_thumbnail_size
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.keys import sidecar_prefix, vectors_key
from heimdex_pipeline.stores.objects import ObjectNotFoundError
from heimdex_pipeline.stores.vectors import quote

TOLERANCE_S = 1e-6


@dataclass(frozen=True)
class CheckOutcome:
    """What a check found: the problems (none means passed) and figures to show."""

    problems: list[str]
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def description(self) -> str | None:
        return "; ".join(self.problems[:5]) if self.problems else None


@dataclass(frozen=True)
class Check:
    """A check of one asset, evaluated per video."""

    name: str
    asset: str
    blocking: bool
    evaluate: Callable[[str, Stores, SampleSettings], CheckOutcome]

    @property
    def description(self) -> str:
        return (self.evaluate.__doc__ or self.name).strip()


def tiling_problems(spans: list[tuple[float, float]], duration_s: float) -> list[str]:
    """What keeps these (start, end) pairs from tiling [0, duration] exactly."""
    if not spans:
        return ["no scenes"]
    problems = []
    if abs(spans[0][0]) > TOLERANCE_S:
        problems.append(f"first scene starts at {spans[0][0]:.6f}, not 0")
    for number, (start, end) in enumerate(spans):
        if end <= start:
            problems.append(f"scene {number} is empty or reversed ({start:.6f}-{end:.6f})")
        if number and abs(start - spans[number - 1][1]) > TOLERANCE_S:
            kind = "gap" if start > spans[number - 1][1] else "overlap"
            problems.append(f"{kind} before scene {number} at {start:.6f}")
    if abs(spans[-1][1] - duration_s) > TOLERANCE_S:
        problems.append(f"last scene ends at {spans[-1][1]:.6f}, not {duration_s:.6f}")
    return problems


def scenes_tile_the_video(video_id: str, stores: Stores, _: SampleSettings) -> CheckOutcome:
    """Scenes start at 0, meet end to end, and end at the video's duration."""
    with stores.catalog.session() as session:
        duration = get_video(session, video_id).duration_s or 0.0
        spans = [(row.start_s, row.end_s) for row in scenes_of(session, video_id)]
    return CheckOutcome(tiling_problems(spans, duration), {"scene_count": len(spans)})


def sidecars_match_catalog(video_id: str, stores: Stores, _: SampleSettings) -> CheckOutcome:
    """Every scene's sidecar exists and says what its row says; no stray sidecars."""
    with stores.catalog.session() as session:
        rows = scenes_of(session, video_id)
    problems = []
    for row in rows:
        try:
            sidecar = json.loads(stores.objects.get_bytes(row.sidecar_key or ""))
        except (ObjectNotFoundError, ValueError):
            problems.append(f"scene {row.index}: sidecar {row.sidecar_key} missing or unreadable")
            continue
        expected = {"scene_id": row.id, "video_id": video_id, "index": row.index}
        wrong = [k for k, v in expected.items() if sidecar.get(k) != v]
        wrong += [
            k
            for k in ("start_s", "end_s")
            if abs(float(sidecar.get(k, -1)) - getattr(row, k)) > 1e-3
        ]
        if wrong:
            problems.append(f"scene {row.index}: sidecar disagrees on {', '.join(wrong)}")
    known = {row.sidecar_key for row in rows}
    listed = stores.objects.list(sidecar_prefix(video_id))
    problems += [f"stray sidecar {info.key}" for info in listed if info.key not in known]
    return CheckOutcome(problems, {"sidecars": len(rows)})


def thumbnails_exist_and_decode(
    video_id: str, stores: Stores, sampling: SampleSettings
) -> CheckOutcome:
    """Every scene has a thumbnail in the store that decodes to the expected size."""
    with stores.catalog.session() as session:
        video = get_video(session, video_id)
        rows = scenes_of(session, video_id)
        expected = expected_thumbnail_size(
            video.width or 0,
            video.height or 0,
            video.display_aspect or 1.0,
            video.rotation or 0,
            sampling,
        )
    problems = [] if rows else ["no scenes"]
    for row in rows:
        if not row.thumbnail_key:
            problems.append(f"scene {row.index}: no thumbnail key")
            continue
        try:
            with Image.open(io.BytesIO(stores.objects.get_bytes(row.thumbnail_key))) as image:
                image.load()
                size = image.size
        except ObjectNotFoundError:
            problems.append(f"scene {row.index}: {row.thumbnail_key} is not in the store")
            continue
        except OSError as error:
            problems.append(f"scene {row.index}: {row.thumbnail_key} does not decode ({error})")
            continue
        if size != expected:
            problems.append(f"scene {row.index}: {size[0]}x{size[1]}, expected {expected}")
    return CheckOutcome(
        problems, {"thumbnails": len(rows), "expected_size": f"{expected[0]}x{expected[1]}"}
    )


def embeddings_are_unit_vectors(video_id: str, stores: Stores, _: SampleSettings) -> CheckOutcome:
    """One vector per scene, of the model's dimension, finite and of unit length."""
    try:
        scene_ids, matrix, identity = parquet_to_vectors(
            stores.objects.get_bytes(vectors_key(video_id))
        )
    except ObjectNotFoundError:
        return CheckOutcome([f"{vectors_key(video_id)} is not in the store"])
    with stores.catalog.session() as session:
        expected = [row.id for row in scenes_of(session, video_id)]
    problems = []
    if sorted(scene_ids) != sorted(expected):
        problems.append(f"{len(scene_ids)} vectors for {len(expected)} scenes")
    if matrix.shape[1:] != (identity.dim,):
        problems.append(f"vectors are {matrix.shape[1:]}, the model gives {identity.dim}")
    if not np.isfinite(matrix).all():
        problems.append("non-finite values")
    norms = np.linalg.norm(matrix, axis=1) if len(matrix) else np.ones(0)
    if len(norms) and np.isfinite(norms).all() and np.abs(norms - 1).max() > 1e-3:
        problems.append(f"norms range {norms.min():.4f}-{norms.max():.4f}, not 1")
    return CheckOutcome(
        problems, {"vectors": len(scene_ids), "dim": identity.dim, "model_id": identity.model_id}
    )


def search_index_one_row_per_scene(
    video_id: str, stores: Stores, _: SampleSettings
) -> CheckOutcome:
    """The model's table holds exactly one row per scene of the video, and no other."""
    _, _, identity = parquet_to_vectors(stores.objects.get_bytes(vectors_key(video_id)))
    try:
        table = stores.vectors.scenes_table(identity.model_id, identity.dim, create=False)
    except LookupError as error:
        return CheckOutcome([str(error)])
    rows = table.search().where(f"video_id = {quote(video_id)}").select(["scene_id"]).to_list()
    stored = [row["scene_id"] for row in rows]
    with stores.catalog.session() as session:
        expected = sorted(row.id for row in scenes_of(session, video_id))
    problems = []
    if len(stored) != len(set(stored)):
        problems.append(f"{len(stored) - len(set(stored))} duplicate rows")
    if sorted(set(stored)) != expected:
        problems.append(f"{len(set(stored))} distinct rows for {len(expected)} scenes")
    return CheckOutcome(problems, {"rows": len(stored), "scenes": len(expected)})


def transcript_lines_inside_their_scenes(
    video_id: str, stores: Stores, _: SampleSettings
) -> CheckOutcome:
    """Every line of the transcript lies inside the video and inside the scene it is assigned
    to, and the table holds as many lines as the catalog says."""
    from heimdex_pipeline.catalog.videos import transcript_of
    from heimdex_pipeline.stores.transcripts import transcript_tables, transcripts_table_name

    with stores.catalog.session() as session:
        duration = get_video(session, video_id).duration_s or 0.0
        scenes = {row.id: (row.start_s, row.end_s) for row in scenes_of(session, video_id)}
        row = transcript_of(session, video_id)
        expected = (row.model_id, row.line_count, row.status) if row is not None else None
    if expected is None:
        return CheckOutcome([], {"lines": 0, "status": "none"})
    model_id, line_count, status = expected
    name = transcripts_table_name(model_id)
    if name not in transcript_tables(stores.vectors):
        problems = [f"no table {name}"] if line_count else []
        return CheckOutcome(problems, {"lines": 0, "status": status})
    lines = (
        stores.vectors.open(name)
        .search()
        .where(f"video_id = {quote(video_id)}")
        .select(["line_id", "scene_id", "start_s", "end_s"])
        .to_list()
    )
    problems = []
    if len(lines) != line_count:
        problems.append(f"{len(lines)} lines in {name}, the catalog says {line_count}")
    for line in lines:
        start, end = line["start_s"], line["end_s"]
        if not (-TOLERANCE_S <= start <= end <= duration + TOLERANCE_S):
            problems.append(f"line {line['line_id']} ({start:.3f}-{end:.3f}) is outside the video")
        span = scenes.get(line["scene_id"])
        if span is None:
            problems.append(f"line {line['line_id']} is assigned to an unknown scene")
        elif not (span[0] - TOLERANCE_S <= start and end <= span[1] + TOLERANCE_S):
            problems.append(f"line {line['line_id']} ({start:.3f}-{end:.3f}) is outside its scene")
    return CheckOutcome(problems, {"lines": len(lines), "status": status})


def faces_inside_frames_one_row_each(
    video_id: str, stores: Stores, sampling: SampleSettings
) -> CheckOutcome:
    """Every face the catalog holds for the video is one row of the face table (no more, no
    less), its box inside its frame, its descriptor finite and of the model's size, its crop
    stored."""
    from heimdex_pipeline.catalog.people import faces_of_video
    from heimdex_pipeline.faces.model import DIM
    from heimdex_pipeline.stores.faces import face_tables

    with stores.catalog.session() as session:
        faces = {
            face.id: (face.model_id, face.x, face.y, face.w, face.h, face.frame_w, face.frame_h,
                      face.crop_key)
            for face in faces_of_video(session, video_id)
        }  # fmt: skip
    rows: list[dict] = []
    for name in face_tables(stores.vectors):
        rows += (
            stores.vectors.open(name)
            .search()
            .where(f"video_id = {quote(video_id)}")
            .select(["face_id", "box", "frame_w", "frame_h", "vector"])
            .to_list()
        )
    problems = []
    ids = [row["face_id"] for row in rows]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} faces have more than one row")
    if set(ids) != set(faces):
        problems.append(
            f"{len(set(faces) - set(ids))} catalog faces have no row, "
            f"{len(set(ids) - set(faces))} rows have no catalog face"
        )
    for row in rows:
        x, y, w, h = row["box"]
        if not (x >= 0 and y >= 0 and w > 0 and h > 0):
            problems.append(f"face {row['face_id']} has an empty or negative box")
        elif x + w > row["frame_w"] or y + h > row["frame_h"]:
            problems.append(f"face {row['face_id']}'s box reaches outside its frame")
        vector = np.asarray(row["vector"], dtype=np.float64)
        if vector.shape != (DIM,) or not np.isfinite(vector).all():
            problems.append(f"face {row['face_id']}: descriptor not {DIM} finite numbers")
    for face_id, facts in faces.items():
        if not stores.objects.exists(facts[-1]):
            problems.append(f"face {face_id}: no crop at {facts[-1]}")
    return CheckOutcome(problems, {"faces": len(faces), "rows": len(rows)})


ALL_CHECKS = [
    Check("scenes_tile_the_video", "scenes", True, scenes_tile_the_video),
    Check("sidecars_match_catalog", "scenes", False, sidecars_match_catalog),
    Check("thumbnails_exist_and_decode", "thumbnails", True, thumbnails_exist_and_decode),
    Check("embeddings_are_unit_vectors", "embeddings", True, embeddings_are_unit_vectors),
    Check("search_index_one_row_per_scene", "search_index", True, search_index_one_row_per_scene),
    Check(
        "transcript_lines_inside_their_scenes",
        "transcripts",
        False,
        transcript_lines_inside_their_scenes,
    ),
    Check("faces_inside_frames_one_row_each", "faces", False, faces_inside_frames_one_row_each),
]


def checks_of(asset: str) -> list[Check]:
    return [check for check in ALL_CHECKS if check.asset == asset]
