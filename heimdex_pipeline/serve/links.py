"""URLs a browser can fetch objects from: presigned for the public S3 endpoint, or this server's
own `/media/` route for a local store."""

from __future__ import annotations

import logging
from urllib.parse import quote

from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores.objects import (
    InvalidKeyError,
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    validate_key,
)

log = logging.getLogger(__name__)

MEDIA_ROUTE = "/media/"
# What the server hands out from a local store: pictures (thumbnails, face crops) and the
# videos themselves, no more.
SERVED_PREFIXES = ("thumbnails/", "faces/", "inbox/", "incoming/")


class MediaLinks:
    """Makes the URL of an object for a browser; None (logged) when it cannot."""

    def __init__(self, objects: ObjectStore, settings: Settings):
        self.objects = objects
        self.local = isinstance(objects, LocalObjectStore)
        if isinstance(objects, S3ObjectStore) and settings.serve.public_endpoint:
            objects.sign_for(settings.serve.public_endpoint, settings.serve.public_secure)

    def __call__(self, key: str | None) -> str | None:
        if not key:
            return None
        try:
            if self.local:
                return MEDIA_ROUTE + quote(servable_key(key))
            return self.objects.presigned_get_url(key)  # fresh for each answer: one hour
        except Exception as error:
            log.warning("could not make a URL for %s: %s", key, type(error).__name__)
            return None


def servable_key(key: str) -> str:
    """The key if this server may hand it out, else InvalidKeyError."""
    validate_key(key)
    if not key.startswith(SERVED_PREFIXES):
        raise InvalidKeyError(key, "not a thumbnail, a face crop or a video")
    return key
