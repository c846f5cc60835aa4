"""Object storage: one interface (`base`), a local folder (`local`) or any S3-compatible store
(`s3`, MinIO in production) behind it; `open_object_store` picks one from a location."""

from __future__ import annotations

from heimdex_pipeline.settings import S3Settings
from heimdex_pipeline.stores.objects.base import (
    DEFAULT_URL_EXPIRY,
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectPage,
    ObjectStore,
    validate_key,
    validate_prefix,
)
from heimdex_pipeline.stores.objects.local import LocalObjectStore
from heimdex_pipeline.stores.objects.s3 import S3ObjectStore

__all__ = [
    "DEFAULT_URL_EXPIRY",
    "InvalidKeyError",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectPage",
    "ObjectStore",
    "S3ObjectStore",
    "open_object_store",
    "validate_key",
    "validate_prefix",
]


def open_object_store(location: str, s3: S3Settings | None) -> ObjectStore:
    """The store at a folder or at s3://bucket/prefix (which needs `s3`)."""
    if location.startswith("s3://"):
        if s3 is None:
            raise ValueError(f"{location}: an s3:// object store needs HEIMDEX_S3_ENDPOINT")
        return S3ObjectStore.from_url(location, s3)
    return LocalObjectStore(location)
