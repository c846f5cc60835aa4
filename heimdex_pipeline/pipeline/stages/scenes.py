"""scenes: shot boundaries in one decode pass, scenes that tile the video, immutable sidecars."""

from __future__ import annotations

import hashlib
import json
import time

import dagster as dg

from heimdex_pipeline import PIPELINE_VERSION
from heimdex_pipeline.catalog.models import Scene
from heimdex_pipeline.catalog.videos import get_video, replace_scenes
from heimdex_pipeline.media.analyse import analyse_video
from heimdex_pipeline.media.detect import DetectorSettings, SceneSpan, tile_scenes
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.media.probe import VideoProbe, probe
from heimdex_pipeline.pipeline.stages.base import Stage, StageContext, StageResult, one_at_a_time
from heimdex_pipeline.stores.bundles import pack_samples
from heimdex_pipeline.stores.keys import candidates_key, sidecar_key, sidecar_prefix, source_key

SIDECAR_SCHEMA_VERSION = 1


def scene_id_for(video_id: str, span: SceneSpan) -> str:
    """Stable for the same video and boundaries; a changed boundary gives a new id."""
    digest = hashlib.sha256(
        f"{video_id}|{round(span.start_s * 1000)}|{round(span.end_s * 1000)}".encode()
    ).hexdigest()[:8]
    return f"{video_id}-{span.index:04d}-{digest}"


def sidecar_for(
    video_id: str,
    scene_id: str,
    span: SceneSpan,
    facts: VideoProbe,
    detector: DetectorSettings,
    max_scene_s: float,
) -> dict[str, object]:
    """The sidecar JSON of one scene: what it is and exactly what produced it."""
    return {
        "schema_version": SIDECAR_SCHEMA_VERSION,
        "video_id": video_id,
        "scene_id": scene_id,
        "index": span.index,
        "start_s": round(span.start_s, 6),
        "end_s": round(span.end_s, 6),
        "start_frame": round(span.start_s * facts.fps),
        "end_frame": round(span.end_s * facts.fps),
        "detector": {**detector.as_dict(), "max_scene_s": max_scene_s},
        "pipeline_version": PIPELINE_VERSION,
    }


LISTED = 100  # cuts shown in a materialization's metadata


def find_scenes(context: StageContext, video_id: str) -> StageResult:
    """Decode the video once: its shots become scenes (rows and sidecars), and the frames the
    thumbnails and embeddings need are kept."""
    started = time.perf_counter()
    stores, knobs = context.stores, context.pipeline
    detector = DetectorSettings(detector=knobs.shot_detector)
    with stores.catalog.session() as session:
        video = get_video(session, video_id)
        key, title = source_key(stores.objects, video_id, video.source_uri), video.title
    with stores.objects.local_path(key) as path:
        try:
            facts = probe(path)
            analysis = analyse_video(path, facts, detector, context.sampling, knobs.max_scene_s)
        except InvalidVideoError as error:
            raise InvalidVideoError(title, error.reason) from None
    spans = tile_scenes(analysis.cuts_s, facts.duration_s, knobs.max_scene_s)
    rows, sidecar_keys = [], set()
    for span in spans:
        scene_id = scene_id_for(video_id, span)
        sidecar = sidecar_key(video_id, scene_id)
        sidecar_keys.add(sidecar)
        if not stores.objects.exists(sidecar):  # immutable: the id changes when the content would
            body = sidecar_for(video_id, scene_id, span, facts, detector, knobs.max_scene_s)
            stores.objects.put_bytes(
                sidecar, json.dumps(body, indent=2).encode(), "application/json"
            )
        rows.append(
            Scene(
                id=scene_id,
                video_id=video_id,
                index=span.index,
                start_s=span.start_s,
                end_s=span.end_s,
                sidecar_key=sidecar,
            )
        )
    stores.objects.put_bytes(
        candidates_key(video_id), pack_samples(analysis.samples), "application/zip"
    )
    with stores.catalog.session() as session:
        replace_scenes(session, video_id, rows)
    stores.objects.keep_only(sidecar_prefix(video_id), sidecar_keys)
    return StageResult(
        metadata={
            "scene_count": len(spans),
            "cut_count": len(analysis.cuts_s),
            # a two-hour film has a thousand cuts: the UI gets the first ones and where the
            # rest are, never a thousand-row list in one materialization
            "cuts_s": dg.MetadataValue.json([round(c, 3) for c in analysis.cuts_s[:LISTED]]),
            "cuts_listed": f"{min(LISTED, len(analysis.cuts_s))} of {len(analysis.cuts_s)}",
            "every_scene": dg.MetadataValue.path(stores.objects.uri(sidecar_prefix(video_id))),
            "duration_s": dg.MetadataValue.float(round(facts.duration_s, 3)),
            "frame_count": facts.frame_count,
            "frames_decoded": facts.frames_decoded + analysis.frames_decoded,
            "frames_kept": len(analysis.samples),
            "detector": dg.MetadataValue.json(
                {**detector.as_dict(), "max_scene_s": knobs.max_scene_s}
            ),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )


SCENES = Stage(
    reads=("raw_videos",),
    asset="scenes",
    work=one_at_a_time(find_scenes),
    description="Shot boundaries from the detector HEIMDEX_SHOT_DETECTOR names (`fused` by "
    "default; recorded in each materialization's `detector`), in one decode pass that keeps "
    "the frames later stages need; scenes tile [0, duration], long shots split.",
    group="media",
    kinds=frozenset({"python", "video"}),
)
