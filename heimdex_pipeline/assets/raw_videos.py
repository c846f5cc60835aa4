"""raw_videos: copy into the inbox, probe, hash and register the video."""

import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg

from heimdex_pipeline.assets.failures import video_step
from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import get_video, set_state
from heimdex_pipeline.keys import source_key
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.media.probe import probe, sha256_of
from heimdex_pipeline.partitions import videos
from heimdex_pipeline.resources import CatalogResource, ObjectStoreResource, VectorStoreResource


def _copy_into_inbox(store, key: str, source_uri: str) -> None:
    parsed = urlparse(source_uri)
    if parsed.scheme != "file":
        raise InvalidVideoError(source_uri, f"not in the inbox and not a local file ({key})")
    path = Path(unquote(parsed.path))
    if not path.is_file():
        raise InvalidVideoError(str(path), "source file not found")
    store.put_file(key, path)


@dg.asset(
    partitions_def=videos,
    group_name="ingest",
    kinds={"python", "video"},
    description="The source video, copied into the object store, probed, hashed and registered.",
)
def raw_videos(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource,
) -> dg.MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    with catalog.session() as session:
        video = get_video(session, video_id)
        source_uri, title = video.source_uri, video.title
        set_state(session, video_id, VideoState.VALIDATING)
    store = objects.store()
    key = source_key(store, video_id, source_uri)
    with video_step(context, "raw_videos", catalog, objects, vectors):
        copied = not store.exists(key)
        if copied:
            _copy_into_inbox(store, key, source_uri)
        try:
            with store.local_path(key) as path:
                facts = probe(path)
                digest = sha256_of(path)
        except InvalidVideoError as error:
            if copied:
                store.delete(key)
            raise InvalidVideoError(title, error.reason) from None
        with catalog.session() as session:
            video = get_video(session, video_id)
            video.mime_type = facts.mime_type
            video.size_bytes = facts.size_bytes
            video.sha256 = digest
            video.duration_s = facts.duration_s
            video.frame_count = facts.frame_count
            video.width = facts.width
            video.height = facts.height
            video.display_aspect = facts.display_aspect
            video.fps = facts.fps
            video.rotation = facts.rotation
            set_state(session, video_id, VideoState.PROCESSING)
    display_w, display_h = facts.display_size
    return dg.MaterializeResult(
        metadata={
            "source": dg.MetadataValue.url(source_uri),
            "inbox_key": key,
            "container": facts.container,
            "codec": facts.codec,
            "duration_s": dg.MetadataValue.float(round(facts.duration_s, 3)),
            "frame_count": facts.frame_count,
            "fps": dg.MetadataValue.float(round(facts.fps, 3)),
            "size": f"{facts.width}x{facts.height}",
            "display_size": f"{display_w}x{display_h}",
            "display_aspect": dg.MetadataValue.float(round(facts.display_aspect, 4)),
            "rotation": facts.rotation,
            "has_audio": facts.has_audio,
            "size_bytes": facts.size_bytes,
            "sha256": digest,
            "copied_into_inbox": copied,
            "frames_decoded": facts.frames_decoded,
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        },
        data_version=dg.DataVersion(digest),
    )
