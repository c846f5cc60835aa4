"""thumbnails: one WebP per scene and the frames the embedder needs, from the kept frames."""

from __future__ import annotations

import time

import dagster as dg

from heimdex_pipeline.catalog.videos import scenes_of
from heimdex_pipeline.media.detect import SceneSpan
from heimdex_pipeline.media.thumbnail import contact_sheet_markdown, scene_pictures
from heimdex_pipeline.pipeline.stages.base import Stage, StageContext, StageResult, one_at_a_time
from heimdex_pipeline.stores.bundles import pack_files, unpack_samples
from heimdex_pipeline.stores.keys import (
    candidates_key,
    embedder_frames_key,
    thumbnail_key,
    thumbnail_prefix,
)


def make_thumbnails(context: StageContext, video_id: str) -> StageResult:
    """Pick and encode each scene's thumbnail and embedder frames (no video is decoded)."""
    started = time.perf_counter()
    stores, knobs = context.stores, context.pipeline
    samples = unpack_samples(stores.objects.get_bytes(candidates_key(video_id)))
    sheet: list[tuple[str, bytes]] = []
    embed_files: dict[str, bytes] = {}
    keys: dict[str, str] = {}
    with stores.catalog.session() as session:
        spans = [
            (row.id, SceneSpan(row.index, row.start_s, row.end_s))
            for row in scenes_of(session, video_id)
        ]
    for scene_id, span in spans:
        pictures = scene_pictures(samples, span, knobs.thumbnail_long_side, knobs.embed_short_side)
        key = thumbnail_key(video_id, scene_id)
        stores.objects.put_bytes(key, pictures.thumbnail_webp, "image/webp")
        keys[scene_id] = key
        sheet.append(
            (f"#{span.index} {span.start_s:.1f}-{span.end_s:.1f}s", pictures.thumbnail_webp)
        )
        for number, jpeg in enumerate(pictures.embedder_jpegs):
            embed_files[f"{scene_id}/{number}.jpg"] = jpeg
    stores.objects.put_bytes(
        embedder_frames_key(video_id), pack_files(embed_files), "application/zip"
    )
    with stores.catalog.session() as session:
        for row in scenes_of(session, video_id):
            row.thumbnail_key = keys[row.id]
    stores.objects.keep_only(thumbnail_prefix(video_id), set(keys.values()))
    return StageResult(
        metadata={
            "thumbnail_count": len(keys),
            "embedder_frames": len(embed_files),
            "contact_sheet": dg.MetadataValue.md(contact_sheet_markdown(sheet)),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )


THUMBNAILS = Stage(
    reads=("scenes",),
    asset="thumbnails",
    work=one_at_a_time(make_thumbnails),
    description="One upright, display-aspect WebP per scene; three frames per scene for CLIP. "
    "Reads the frames the scenes pass kept: decodes no video.",
    group="media",
    kinds=frozenset({"python", "webp"}),
)
