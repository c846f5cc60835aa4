"""embeddings: CLIP image vectors per scene, from the stored frames (never the video)."""

import io
import time
from collections import defaultdict

import dagster as dg
import numpy as np
from PIL import Image

from heimdex_pipeline.assets.failures import video_step
from heimdex_pipeline.assets.thumbnails import thumbnails
from heimdex_pipeline.bundles import unpack_files
from heimdex_pipeline.catalog.videos import scenes_of
from heimdex_pipeline.embeddings_io import vectors_to_parquet
from heimdex_pipeline.keys import embedder_frames_key, vectors_key
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import (
    CatalogResource,
    ClipResource,
    ObjectStoreResource,
    VectorStoreResource,
)
from heimdex_pipeline.resources.clip import normalise


@dg.asset(
    deps=[thumbnails],
    partitions_def=videos,
    group_name="search",
    kinds={"pytorch", "parquet"},
    pool="clip",
    description="open_clip image embeddings: frames mean-pooled per scene, L2-normalised.",
)
def embeddings(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
    clip: ClipResource,
) -> dg.MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    store = objects.store()
    with video_step(context, "embeddings", catalog, objects, vectors):
        encoder = clip.encoder()
        files = unpack_files(store.get_bytes(embedder_frames_key(video_id)))
        by_scene: dict[str, list[str]] = defaultdict(list)
        for name in sorted(files):
            by_scene[name.split("/", 1)[0]].append(name)
        with catalog.session() as session:
            scene_ids = [row.id for row in scenes_of(session, video_id)]
        missing = [s for s in scene_ids if s not in by_scene]
        if missing:
            raise RuntimeError(f"no stored frames for {len(missing)} scenes, e.g. {missing[0]}")
        names = [name for scene_id in scene_ids for name in by_scene[scene_id]]
        images = [Image.open(io.BytesIO(files[name])).convert("RGB") for name in names]
        encode_started = time.perf_counter()
        frame_vectors = encoder.encode_images(images)
        encode_seconds = time.perf_counter() - encode_started
        pooled, offset = [], 0
        for scene_id in scene_ids:
            count = len(by_scene[scene_id])
            pooled.append(frame_vectors[offset : offset + count].mean(axis=0))
            offset += count
        scene_vectors = normalise(np.stack(pooled)) if pooled else frame_vectors[:0]
        identity = encoder.identity
        store.put_bytes(
            vectors_key(video_id), vectors_to_parquet(scene_ids, scene_vectors, identity)
        )
    if identity.is_random:
        context.log.warning("RANDOM CLIP WEIGHTS: these vectors carry no meaning for text search")
    return dg.MaterializeResult(
        metadata={
            "vector_count": len(scene_ids),
            "frames_embedded": len(images),
            "dim": identity.dim,
            "model": identity.model,
            "pretrained": identity.pretrained,
            "model_id": identity.model_id,
            "weights_sha256": identity.weights_sha256,
            "random_weights": identity.is_random,
            "device": encoder.device,
            "images_per_s": dg.MetadataValue.float(
                round(len(images) / max(encode_seconds, 1e-9), 1)
            ),
            "frames_decoded": 0,
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )
