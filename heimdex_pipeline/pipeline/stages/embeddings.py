"""embeddings: CLIP image vectors per scene, from the stored frames (never the video).

The frames of every video in the run are encoded together, in full batches, by the one model the
run process loaded.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import numpy as np

from heimdex_pipeline.catalog.videos import scenes_of
from heimdex_pipeline.clip.model import normalise
from heimdex_pipeline.clip.vectors_io import vectors_to_parquet
from heimdex_pipeline.clip.worker import ClipWorker
from heimdex_pipeline.pipeline.stages.base import (
    STAGE_RESOURCES,
    Outcome,
    Stage,
    StageContext,
    StageResult,
    prepare_each,
)
from heimdex_pipeline.stores.bundles import unpack_files
from heimdex_pipeline.stores.keys import embedder_frames_key, vectors_key


@dataclass
class _VideoFrames:
    scene_ids: list[str]
    per_scene: list[int]
    images: list[bytes]  # JPEG, decoded by the CLIP worker
    seconds: float


def _frames_of(context: StageContext, video_id: str) -> _VideoFrames:
    started = time.perf_counter()
    files = unpack_files(context.stores.objects.get_bytes(embedder_frames_key(video_id)))
    by_scene: dict[str, list[str]] = defaultdict(list)
    for name in sorted(files):
        by_scene[name.split("/", 1)[0]].append(name)
    with context.stores.catalog.session() as session:
        scene_ids = [row.id for row in scenes_of(session, video_id)]
    missing = [s for s in scene_ids if s not in by_scene]
    if missing:
        raise RuntimeError(f"no stored frames for {len(missing)} scenes, e.g. {missing[0]}")
    names = [name for scene_id in scene_ids for name in by_scene[scene_id]]
    images = [files[name] for name in names]
    return _VideoFrames(
        scene_ids, [len(by_scene[s]) for s in scene_ids], images, time.perf_counter() - started
    )


def embed_videos(context: StageContext, video_ids: list[str]) -> Iterator[tuple[str, Outcome]]:
    """Embed every scene of these videos: frames mean-pooled per scene, L2-normalised. The
    model is loaded for this step and dropped after it (the step holds the `clip` pool slot)."""
    assert context.clip is not None
    encoder = context.clip.encoder()
    try:
        yield from _embed(context, encoder, video_ids)
    finally:
        encoder.release()


def _embed(
    context: StageContext, encoder: ClipWorker, video_ids: list[str]
) -> Iterator[tuple[str, Outcome]]:
    load_started = time.perf_counter()
    try:
        identity = encoder.identity  # loads the model
    except Exception as error:  # no model: no video can be embedded
        for video_id in video_ids:
            yield video_id, error
        return
    load_seconds = time.perf_counter() - load_started
    gathered, errors = prepare_each(video_ids, lambda video_id: _frames_of(context, video_id))
    yield from errors
    images = [image for frames in gathered.values() for image in frames.images]
    encode_started = time.perf_counter()
    try:
        frame_vectors = encoder.encode_jpegs(images)
    except Exception as error:
        for video_id in gathered:
            yield video_id, error
        return
    encode_seconds = time.perf_counter() - encode_started
    if identity.is_random:
        context.log.warning("RANDOM CLIP WEIGHTS: these vectors carry no meaning for text search")
    offset = 0
    for video_id, frames in gathered.items():
        started = time.perf_counter()
        mine = frame_vectors[offset : offset + len(frames.images)]
        offset += len(frames.images)
        try:
            pooled, start = [], 0
            for count in frames.per_scene:
                pooled.append(mine[start : start + count].mean(axis=0))
                start += count
            scene_vectors = normalise(np.stack(pooled)) if pooled else mine[:0]
            context.stores.objects.put_bytes(
                vectors_key(video_id), vectors_to_parquet(frames.scene_ids, scene_vectors, identity)
            )
        except Exception as error:
            yield video_id, error
            continue
        share = (load_seconds + encode_seconds) * len(frames.images) / max(1, len(images))
        yield (
            video_id,
            StageResult(
                metadata={
                    "vector_count": len(frames.scene_ids),
                    "frames_embedded": len(frames.images),
                    "dim": identity.dim,
                    "model": identity.model,
                    "pretrained": identity.pretrained,
                    "model_id": identity.model_id,
                    "weights_sha256": identity.weights_sha256,
                    "random_weights": identity.is_random,
                    "device": encoder.device,
                    "batch_images": len(images),
                    "model_load_s": dg.MetadataValue.float(round(load_seconds, 3)),
                    "images_per_s": dg.MetadataValue.float(
                        round(len(images) / max(encode_seconds, 1e-9), 1)
                    ),
                    "seconds": dg.MetadataValue.float(
                        round(frames.seconds + share + time.perf_counter() - started, 3)
                    ),
                }
            ),
        )


EMBEDDINGS = Stage(
    reads=("thumbnails",),
    asset="embeddings",
    work=embed_videos,
    description="open_clip image embeddings: frames mean-pooled per scene, L2-normalised.",
    group="search",
    kinds=frozenset({"pytorch", "parquet"}),
    resources=frozenset(STAGE_RESOURCES | {"clip"}),
    pool="clip",
)
