"""Asset checks, one partition at a time: the ones that catch "indexed but no thumbnails"."""

import io
import json
import warnings

import dagster as dg
import numpy as np
from PIL import Image

from heimdex_pipeline.assets import embeddings, scenes, search_index, thumbnails
from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import get_video, scenes_of, set_state
from heimdex_pipeline.embeddings_io import parquet_to_vectors
from heimdex_pipeline.keys import vectors_key
from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.media.thumbnail import expected_thumbnail_size
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import (
    CatalogResource,
    ObjectStoreResource,
    PipelineResource,
    VectorStoreResource,
)
from heimdex_pipeline.resources.object_store import ObjectNotFoundError
from heimdex_pipeline.resources.vector_store import quote

TOLERANCE_S = 1e-6

# partitions_def on a check is "preview" in Dagster 1.13, and needed: without it a check on a
# dynamically partitioned asset reads the wrong partition. Known, so not shown on every command.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)


def _result(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    problems: list[str],
    **metadata,
) -> dg.AssetCheckResult:
    """The check's result; a failed check also marks the video `failed`, saying why."""
    description = "; ".join(problems[:5]) if problems else None
    if problems:
        with catalog.session() as session:
            set_state(
                session,
                context.partition_key,
                VideoState.FAILED,
                f"check {context.check_specs[0].name} failed: {description}",
            )
    return dg.AssetCheckResult(
        passed=not problems,
        description=description,
        metadata={"problems": len(problems), **metadata},
    )


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


@dg.asset_check(asset=scenes, partitions_def=videos, blocking=True)
def scenes_tile_the_video(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource
) -> dg.AssetCheckResult:
    """Scenes start at 0, meet end to end, and end at the video's duration."""
    with catalog.session() as session:
        duration = get_video(session, context.partition_key).duration_s or 0.0
        spans = [(row.start_s, row.end_s) for row in scenes_of(session, context.partition_key)]
    return _result(context, catalog, tiling_problems(spans, duration), scene_count=len(spans))


@dg.asset_check(asset=scenes, partitions_def=videos)
def sidecars_match_catalog(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, objects: ObjectStoreResource
) -> dg.AssetCheckResult:
    """Every scene's sidecar exists and says what its row says; no stray sidecars."""
    store = objects.store()
    video_id = context.partition_key
    with catalog.session() as session:
        rows = scenes_of(session, video_id)
    problems = []
    for row in rows:
        try:
            sidecar = json.loads(store.get_bytes(row.sidecar_key or ""))
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
    strays = [info.key for info in store.list(f"sidecars/{video_id}/") if info.key not in known]
    problems += [f"stray sidecar {key}" for key in strays]
    return _result(context, catalog, problems, sidecars=len(rows))


@dg.asset_check(asset=thumbnails, partitions_def=videos, blocking=True)
def thumbnails_exist_and_decode(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    pipeline: PipelineResource,
) -> dg.AssetCheckResult:
    """Every scene has a thumbnail in the store that decodes to the expected size."""
    store = objects.store()
    with catalog.session() as session:
        video = get_video(session, context.partition_key)
        rows = scenes_of(session, context.partition_key)
        expected = expected_thumbnail_size(
            video.width or 0,
            video.height or 0,
            video.display_aspect or 1.0,
            video.rotation or 0,
            SampleSettings(
                short_side=pipeline.embed_short_side, long_side=pipeline.thumbnail_long_side
            ),
        )
    problems = []
    for row in rows:
        if not row.thumbnail_key:
            problems.append(f"scene {row.index}: no thumbnail key")
            continue
        try:
            with Image.open(io.BytesIO(store.get_bytes(row.thumbnail_key))) as image:
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
    if not rows:
        problems.append("no scenes")
    return _result(
        context,
        catalog,
        problems,
        thumbnails=len(rows),
        expected_size=f"{expected[0]}x{expected[1]}",
    )


@dg.asset_check(asset=embeddings, partitions_def=videos, blocking=True)
def embeddings_are_unit_vectors(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, objects: ObjectStoreResource
) -> dg.AssetCheckResult:
    """One vector per scene, of the model's dimension, finite and of unit length."""
    scene_ids, matrix, identity = parquet_to_vectors(
        objects.store().get_bytes(vectors_key(context.partition_key))
    )
    with catalog.session() as session:
        expected = [row.id for row in scenes_of(session, context.partition_key)]
    problems = []
    if sorted(scene_ids) != sorted(expected):
        problems.append(f"{len(scene_ids)} vectors for {len(expected)} scenes")
    if matrix.shape[1:] != (identity.dim,):
        problems.append(f"vectors are {matrix.shape[1:]}, the model gives {identity.dim}")
    if not np.isfinite(matrix).all():
        problems.append("non-finite values")
    norms = np.linalg.norm(matrix, axis=1) if len(matrix) else np.ones(0)
    if len(norms) and np.abs(norms - 1).max() > 1e-3:
        problems.append(f"norms range {norms.min():.4f}-{norms.max():.4f}, not 1")
    return _result(
        context,
        catalog,
        problems,
        vectors=len(scene_ids),
        dim=identity.dim,
        model_id=identity.model_id,
    )


@dg.asset_check(asset=search_index, partitions_def=videos, blocking=True)
def search_index_one_row_per_scene(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
) -> dg.AssetCheckResult:
    """The model's table holds exactly one row per scene of the video, and no other."""
    video_id = context.partition_key
    _, _, identity = parquet_to_vectors(objects.store().get_bytes(vectors_key(video_id)))
    table = vectors.store().scenes_table(identity.model_id, identity.dim, create=False)
    rows = table.search().where(f"video_id = {quote(video_id)}").select(["scene_id"]).to_list()
    stored = [row["scene_id"] for row in rows]
    with catalog.session() as session:
        expected = sorted(row.id for row in scenes_of(session, video_id))
    problems = []
    if len(stored) != len(set(stored)):
        problems.append(f"{len(stored) - len(set(stored))} duplicate rows")
    if sorted(set(stored)) != expected:
        problems.append(f"{len(set(stored))} distinct rows for {len(expected)} scenes")
    return _result(context, catalog, problems, rows=len(stored), scenes=len(expected))


ALL_CHECKS = [
    scenes_tile_the_video,
    sidecars_match_catalog,
    thumbnails_exist_and_decode,
    embeddings_are_unit_vectors,
    search_index_one_row_per_scene,
]
