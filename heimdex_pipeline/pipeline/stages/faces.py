"""faces: the faces seen in each scene, from the frames the scenes pass kept (the video is never
decoded again).

It reads `scenes` and runs beside the other stages; its failure never fails the video (a video
whose faces could not be found is still found by its pictures and words). For each scene a few
kept frames are scanned (HEIMDEX_FACES_FRAMES_PER_SCENE), faces under HEIMDEX_FACES_MIN_PX
are left out, one face seen in several frames is one row. The crops go to the object store, the
descriptors of every video of the batch to the face model's LanceDB table in one commit, then
the catalog's faces rows; the `people` asset places new faces in people.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from heimdex_pipeline.catalog.models import Face
from heimdex_pipeline.catalog.people import as_blob, drop_faces_of_video, recount, replace_faces
from heimdex_pipeline.catalog.videos import get_video, scenes_of
from heimdex_pipeline.faces.model import DIM, FaceModel
from heimdex_pipeline.faces.scan import Frame, scan_scene
from heimdex_pipeline.media.detect import SceneSpan
from heimdex_pipeline.media.thumbnail import samples_in
from heimdex_pipeline.pipeline.stages.base import (
    STAGE_RESOURCES,
    Outcome,
    Stage,
    StageContext,
    StageResult,
    check_committed,
    prepare_each,
)
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.bundles import unpack_samples
from heimdex_pipeline.stores.faces import (
    delete_video_faces,
    faces_per_video,
    faces_schema,
    faces_table,
    faces_table_name,
    replace_faces_of_videos,
)
from heimdex_pipeline.stores.keys import candidates_key, face_crop_key, faces_prefix
from heimdex_pipeline.stores.vectors import ensure_scalar_indexes


@dataclass
class _Found:
    faces: list[Face]
    rows: list[dict[str, object]]
    frames_scanned: int
    scenes_with_faces: int
    seconds: float


def _scan_video(context: StageContext, model: FaceModel, video_id: str) -> _Found:
    started = time.perf_counter()
    stores = context.stores
    samples = unpack_samples(stores.objects.get_bytes(candidates_key(video_id)))
    with stores.catalog.session() as session:
        owner = get_video(session, video_id).owner
        scenes = [
            (row.id, SceneSpan(row.index, row.start_s, row.end_s))
            for row in scenes_of(session, video_id)
        ]
    if not scenes:
        raise RuntimeError("the video has no scenes: run `scenes` first")
    faces: list[Face] = []
    rows: list[dict[str, object]] = []
    scanned = with_faces = 0
    for scene_id, span in scenes:
        frames = [Frame(s.time_s, s.jpeg) for s in samples_in(samples, span)]
        found, count = scan_scene(model, frames)
        scanned += count
        with_faces += bool(found)
        for number, face in enumerate(found):
            face_id = f"{scene_id}-f{number}"
            crop_key = face_crop_key(video_id, face_id)
            stores.objects.put_bytes(crop_key, face.crop_webp, "image/webp")
            width, height = face.frame_size
            box = face.box
            faces.append(
                Face(
                    id=face_id,
                    video_id=video_id,
                    scene_id=scene_id,
                    model_id=model.model_id,
                    time_s=round(max(span.start_s, face.time_s), 3),
                    x=box.x,
                    y=box.y,
                    w=box.w,
                    h=box.h,
                    frame_w=width,
                    frame_h=height,
                    sightings=face.sightings,
                    crop_key=crop_key,
                    descriptor=as_blob(face.descriptor),
                )
            )
            rows.append(
                {
                    "face_id": face_id,
                    "video_id": video_id,
                    "owner": owner,
                    "scene_id": scene_id,
                    "scene_index": span.index,
                    "time_s": faces[-1].time_s,
                    "box": [box.x, box.y, box.w, box.h],
                    "frame_w": width,
                    "frame_h": height,
                    "crop_key": crop_key,
                    "vector": face.descriptor.tolist(),
                }
            )
    stores.objects.keep_only(faces_prefix(video_id), {face.crop_key for face in faces})
    return _Found(faces, rows, scanned, with_faces, time.perf_counter() - started)


def find_faces(context: StageContext, video_ids: list[str]) -> Iterator[tuple[str, Outcome]]:
    """Scan each video's kept frames, then write the batch's faces in one commit."""
    resource = context.faces
    if resource is None or resource.off:
        for video_id in video_ids:
            yield video_id, StageResult(metadata={"status": "off"})
        return
    load_started = time.perf_counter()
    try:
        model = resource.model()
    except Exception as error:  # no model: no video's faces can be found
        for video_id in video_ids:
            yield video_id, error
        return
    load_s = time.perf_counter() - load_started
    found, errors = prepare_each(video_ids, lambda v: _scan_video(context, model, v))
    yield from errors
    if not found:
        return
    started = time.perf_counter()
    members = list(found)
    try:
        table = faces_table(context.stores.vectors, model.model_id, DIM)
        rows = [row for v in members for row in found[v].rows]
        replace_faces_of_videos(
            table, members, pa.Table.from_pylist(rows, schema=faces_schema(DIM))
        )
        ensure_scalar_indexes(table)
        stored = faces_per_video(table, members)
    except Exception as error:  # the commit is all or nothing: so is the outcome
        for video_id in members:
            yield video_id, error
        return
    shared = (time.perf_counter() - started + load_s) / len(members)
    for video_id in members:
        mine = found[video_id]
        try:
            table_of = faces_table_name(model.model_id)
            check_committed(table_of, stored, video_id, len(mine.faces), "faces")
            with context.stores.catalog.session() as session:
                recount(session, replace_faces(session, video_id, mine.faces))
        except Exception as error:
            yield video_id, error
            continue
        yield (
            video_id,
            StageResult(
                metadata={
                    "status": "scanned",
                    "faces": len(mine.faces),
                    "scenes_with_faces": mine.scenes_with_faces,
                    "frames_scanned": mine.frames_scanned,
                    "model_id": model.model_id,
                    "table": faces_table_name(model.model_id),
                    "min_size_px": model.settings.min_size_px,
                    "seconds": dg.MetadataValue.float(round(mine.seconds + shared, 3)),
                }
            ),
        )


def record_failure(video_id: str, stores: Stores, reason: str) -> None:
    """Faces that could not be found leave none behind: no row, no vector, no crop (the
    partition's failure in Dagster says why)."""
    with stores.catalog.session() as session:
        drop_faces_of_video(session, video_id)
    delete_video_faces(stores.vectors, video_id)
    stores.objects.delete_prefix(faces_prefix(video_id))


FACES = Stage(
    reads=("scenes",),
    asset="faces",
    work=find_faces,
    description="Who is seen: dlib's packaged models (HOG detection, 5-point alignment, the "
    "128-d ResNet) on a few kept frames per scene (never the video), faces from "
    "HEIMDEX_FACES_MIN_PX tall, one row per face seen in a scene with its crop, in the face "
    "model's LanceDB table. HEIMDEX_FACES=off skips it; a failure here never fails the video.",
    group="faces",
    kinds=frozenset({"python", "lancedb"}),
    resources=frozenset(STAGE_RESOURCES | {"faces"}),
    pool="faces",
    fails_video=False,
    on_failure=record_failure,
)
