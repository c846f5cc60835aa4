"""Uploads: a video streamed into `incoming/` (size-limited, name sanitised), where the inbox
sensor indexes it; query images read up to their limit."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import PurePosixPath

from fastapi import HTTPException, UploadFile

from heimdex_pipeline.catalog.video_ids import VIDEO_EXTENSIONS, slug, video_id_for
from heimdex_pipeline.catalog.videos import register_video
from heimdex_pipeline.serve.service import Service
from heimdex_pipeline.stores.keys import INCOMING_PREFIX, user_incoming_prefix

log = logging.getLogger("heimdex.serve")
CHUNK = 1024 * 1024


def read_limited(upload: UploadFile, limit: int, what: str) -> bytes:
    """The upload's bytes; 413 once it is larger than `limit`."""
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the {what} is larger than {limit // 2**20} MB")
    return data


def upload_name(original: str | None) -> str:
    """A safe object name for an upload: a slug of the stem, its video extension."""
    name = PurePosixPath((original or "").replace("\\", "/")).name
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise HTTPException(
            400, f"{name or 'the file'}: not a video file name ({suffix or 'no extension'})"
        )
    return f"{slug(name[: -len(suffix)], 80)}{suffix}"


def accept_upload(service: Service, upload: UploadFile, owner: str) -> dict:
    """Stream the upload to a temporary file (size-limited), then move it into `owner`'s folder
    of incoming/ in one step, under a name no other object has; register it in their library
    so the videos page shows it at once."""
    service.catalog_ready()
    name = upload_name(upload.filename)
    limit = service.settings.serve.max_upload_bytes
    objects = service.stores.objects
    with tempfile.NamedTemporaryFile(prefix="heimdex-upload-", suffix=name) as staging:
        written = 0
        while chunk := upload.file.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise HTTPException(413, f"the video is larger than {limit // 2**20} MB")
            staging.write(chunk)
        staging.flush()
        if written == 0:
            raise HTTPException(400, f"{name}: the file is empty")
        folder = (
            INCOMING_PREFIX
            if owner == service.settings.default_owner
            else user_incoming_prefix(owner)
        )
        key = free_key(objects, folder, name)
        objects.put_file(key, staging.name)
    uri = objects.uri(key)
    video_id = video_id_for(uri)
    try:
        with service.stores.catalog.session() as session:
            register_video(
                session, video_id, uri, upload.filename or name, owner=owner, store_key=key
            )
    except BaseException:  # no object without its row: the inbox would index it unasked
        objects.delete(key)
        raise
    log.info("accepted an upload of %d bytes as %s", written, key)
    return {
        "video_id": video_id,
        "key": key,
        "state": "uploading",
        "size_bytes": written,
        "owner": owner,
    }


def free_key(objects, folder: str, name: str) -> str:
    """A key in `folder` no object has yet: the name, or the name with -2, -3, …"""
    stem, suffix = os.path.splitext(name)
    for number in range(1, 1000):
        key = f"{folder}{stem}{'' if number == 1 else f'-{number}'}{suffix}"
        if not objects.exists(key):
            return key
    raise HTTPException(409, f"too many uploads named {name}")
