"""thumbnails: one WebP per scene and the frames the embedder needs, from the kept frames."""

import time

import dagster as dg

from heimdex_pipeline.assets.failures import video_step
from heimdex_pipeline.assets.scenes import scenes
from heimdex_pipeline.bundles import pack_files, unpack_samples
from heimdex_pipeline.catalog.videos import scenes_of
from heimdex_pipeline.keys import candidates_key, embedder_frames_key, thumbnail_key
from heimdex_pipeline.media.detect import SceneSpan
from heimdex_pipeline.media.thumbnail import contact_sheet_markdown, scene_pictures
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import (
    CatalogResource,
    ObjectStoreResource,
    PipelineResource,
    VectorStoreResource,
)


@dg.asset(
    deps=[scenes],
    partitions_def=videos,
    group_name="media",
    kinds={"python", "webp"},
    description="One upright, display-aspect WebP per scene; three frames per scene for CLIP. "
    "Reads the frames the scenes pass kept: decodes no video.",
)
def thumbnails(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
    pipeline: PipelineResource,
) -> dg.MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    store = objects.store()
    with video_step(context, "thumbnails", catalog, objects, vectors):
        samples = unpack_samples(store.get_bytes(candidates_key(video_id)))
        sheet: list[tuple[str, bytes]] = []
        embed_files: dict[str, bytes] = {}
        keys: dict[str, str] = {}
        with catalog.session() as session:
            rows = scenes_of(session, video_id)
            spans = [(row.id, SceneSpan(row.index, row.start_s, row.end_s)) for row in rows]
        for scene_id, span in spans:
            pictures = scene_pictures(
                samples, span, pipeline.thumbnail_long_side, pipeline.embed_short_side
            )
            webp = pictures.thumbnail_webp
            key = thumbnail_key(video_id, scene_id)
            store.put_bytes(key, webp, "image/webp")
            keys[scene_id] = key
            sheet.append((f"#{span.index} {span.start_s:.1f}-{span.end_s:.1f}s", webp))
            for number, jpeg in enumerate(pictures.embedder_jpegs):
                embed_files[f"{scene_id}/{number}.jpg"] = jpeg
        store.put_bytes(embedder_frames_key(video_id), pack_files(embed_files), "application/zip")
        with catalog.session() as session:
            for row in scenes_of(session, video_id):
                row.thumbnail_key = keys[row.id]
        wanted = set(keys.values())
        for info in store.list(f"thumbnails/{video_id}/"):
            if info.key not in wanted:
                store.delete(info.key)
    return dg.MaterializeResult(
        metadata={
            "thumbnail_count": len(keys),
            "embedder_frames": len(embed_files),
            "frames_decoded": 0,
            "contact_sheet": dg.MetadataValue.md(contact_sheet_markdown(sheet)),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )
