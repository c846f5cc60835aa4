"""Inbox discovery: a video dropped under `incoming/` in the object store gets indexed."""

import dagster as dg

from heimdex_pipeline.catalog.videos import register_video
from heimdex_pipeline.jobs import index_video_job
from heimdex_pipeline.keys import INCOMING_PREFIX
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import CatalogResource, ObjectStoreResource
from heimdex_pipeline.video_ids import VIDEO_EXTENSIONS, file_name_of, video_id_for

MAX_NEW_VIDEOS_PER_TICK = 50


@dg.sensor(
    job=index_video_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Registers each new video under `{INCOMING_PREFIX}` in the object store, adds "
    f"its partition and requests one run of the whole chain (at most "
    f"{MAX_NEW_VIDEOS_PER_TICK} a tick). Upload elsewhere, then move the finished file in.",
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, objects: ObjectStoreResource
) -> dg.SensorResult:
    store = objects.store()
    known = set(context.instance.get_dynamic_partitions(videos.name))
    found: dict[str, tuple[str, str]] = {}
    for info in store.list(INCOMING_PREFIX):
        name = info.key.rsplit("/", 1)[-1]
        if name.startswith(".") or "." + name.rsplit(".", 1)[-1].lower() not in VIDEO_EXTENSIONS:
            continue
        source_uri = store.uri(info.key)
        video_id = video_id_for(source_uri)
        if video_id in known or video_id in found:
            continue
        found[video_id] = (source_uri, file_name_of(source_uri))
        if len(found) >= MAX_NEW_VIDEOS_PER_TICK:
            break
    if not found:
        return dg.SensorResult(skip_reason=f"no new videos under {INCOMING_PREFIX}")
    with catalog.session() as session:
        for video_id, (source_uri, title) in found.items():
            register_video(session, video_id, source_uri, title)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=video_id, run_key=video_id) for video_id in found
        ],
        dynamic_partitions_requests=[videos.build_add_request(list(found))],
    )
