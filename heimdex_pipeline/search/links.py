"""URLs of a scene's thumbnail and a video's source: presigned by the store, or a link the
service makes; one that cannot be made is logged and left None."""

from __future__ import annotations

import logging
from collections.abc import Callable

from heimdex_pipeline.catalog.models import Video
from heimdex_pipeline.catalog.videos import VideoCard
from heimdex_pipeline.stores.keys import source_key
from heimdex_pipeline.stores.objects import ObjectStore

log = logging.getLogger(__name__)


def signed_url(objects: ObjectStore, key: str | None) -> str | None:
    """A fresh URL for an object (one hour), or None, logged, if it cannot be signed."""
    if not key:
        return None
    try:
        return objects.presigned_get_url(key)
    except Exception as error:
        log.warning("could not sign a URL for %s: %s", key, type(error).__name__)
        return None


Link = Callable[[str | None], str | None]


def store_links(objects: ObjectStore) -> Link:
    """URLs straight from the store (presigned, or file:// for a folder): for the CLI."""
    return lambda key: signed_url(objects, key)


def source_url(
    link: Link, objects: ObjectStore, video: Video | VideoCard, start_s: float = 0.0
) -> str | None:
    """Where a player fetches the video, starting at `start_s` (a media fragment)."""
    url = link(source_key(objects, video.id, video.source_uri))
    return f"{url}#t={start_s:.3f}" if url and start_s > 0 else url
