"""raw_videos: the source, copied into the store if it is not there, probed, hashed, registered."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import get_video, set_state
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.media.probe import probe, sha256_of
from heimdex_pipeline.pipeline.stages.base import Stage, StageContext, StageResult, one_at_a_time
from heimdex_pipeline.stores.keys import source_key
from heimdex_pipeline.stores.objects import ObjectNotFoundError, ObjectStore


def local_version(path: Path) -> str:
    """What changes when a local file's content does (as an object's ETag would)."""
    facts = path.stat()
    return f"{facts.st_size}-{facts.st_mtime_ns}"


def refresh_source(
    store: ObjectStore, key: str, source_uri: str, known_version: str | None
) -> tuple[str, bool]:
    """Make the store hold the current source at `key`: the version read, and whether it was
    copied in (a local file that is new or changed since it was last read)."""
    if store.key_for_uri(source_uri) == key:  # the source is an object of the store
        try:
            return store.stat(key).version, False
        except ObjectNotFoundError:
            raise InvalidVideoError(source_uri, "the object is gone from the store") from None
    parsed = urlparse(source_uri)
    if parsed.scheme != "file":
        raise InvalidVideoError(source_uri, f"not in the store and not a local file ({key})")
    path = Path(unquote(parsed.path))
    if not path.exists():
        raise InvalidVideoError(str(path), "source file not found")
    if not path.is_file():
        raise InvalidVideoError(str(path), "not a regular file")
    version = local_version(path)
    if version == known_version and store.exists(key):
        return version, False
    try:
        store.put_file(key, path)
    except PermissionError as error:
        raise InvalidVideoError(str(path), f"cannot read it ({error.strerror})") from None
    return version, True


def take_in_source(context: StageContext, video_id: str) -> StageResult:
    """Copy (when needed), probe and hash one video, and record what was found."""
    started = time.perf_counter()
    stores = context.stores
    with stores.catalog.session() as session:
        video = get_video(session, video_id)
        source_uri, title, known_version = video.source_uri, video.title, video.source_version
        owner = video.owner
        set_state(session, video_id, VideoState.VALIDATING)
    key = source_key(stores.objects, video_id, source_uri)
    version, copied = refresh_source(stores.objects, key, source_uri, known_version)
    try:
        with stores.objects.local_path(key) as path:
            facts = probe(path)
            digest = sha256_of(path)
    except InvalidVideoError as error:
        if copied:
            stores.objects.delete(key)
        raise InvalidVideoError(title, error.reason) from None
    with stores.catalog.session() as session:
        video = get_video(session, video_id)
        changed = video.sha256 is not None and video.sha256 != digest
        video.source_version = version
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
    return StageResult(
        metadata={
            "source": dg.MetadataValue.url(source_uri),
            "owner": owner,
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
            "content_changed": changed,
            "copied_into_inbox": copied,
            "frames_decoded": facts.frames_decoded,
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )


RAW_VIDEOS = Stage(
    asset="raw_videos",
    work=one_at_a_time(take_in_source),
    description="The source video, copied into the object store, probed, hashed and registered.",
    group="ingest",
    kinds=frozenset({"python", "video"}),
)
