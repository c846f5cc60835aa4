"""Object storage: the one interface every store implements, its errors and key rules."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

DEFAULT_URL_EXPIRY = timedelta(hours=1)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Objects are files other processes (a thumbnail server, a backup) read: honour the umask, as any
# program creating files does; tempfile's 0600 would lock them out.
FILE_MODE = 0o666 & ~_umask()


class InvalidKeyError(ValueError):
    """An object key that could escape its store or that no store can hold."""

    def __init__(self, key: object, reason: str):
        super().__init__(f"invalid object key {key!r}: {reason}")
        self.key = key


class ObjectNotFoundError(KeyError):
    """No object at this key."""


def validate_key(key: str) -> str:
    """Return the key if it is a safe relative path of '/'-separated parts, else raise."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(key, "must be a non-empty string")
    if key.startswith("/"):
        raise InvalidKeyError(key, "must be relative, not start with '/'")
    if "\\" in key:
        raise InvalidKeyError(key, "must not contain a backslash")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidKeyError(key, "must not contain control characters")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        raise InvalidKeyError(key, "must not contain empty, '.' or '..' parts")
    if len(key.encode()) > 1024:
        raise InvalidKeyError(key, "longer than 1024 bytes")
    return key


def validate_prefix(prefix: str) -> str:
    """A prefix is a key, or a key followed by '/', or empty (everything)."""
    if prefix == "":
        return prefix
    validate_key(prefix.rstrip("/") or "/")
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    version: str = ""  # changes when the content does: the ETag, or size and mtime locally


@dataclass(frozen=True)
class ObjectPage:
    """One page of a listing; pass `next_token` back as `start_after` for the next one."""

    objects: list[ObjectInfo]
    next_token: str | None


class ObjectStore(ABC):
    """Where inbox videos, thumbnails, sidecars, frames and embeddings live."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream"):
        """Store bytes at key, replacing what was there."""

    @abstractmethod
    def put_file(self, key: str, path: str | Path, content_type: str = "application/octet-stream"):
        """Store a local file at key."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFoundError if absent."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """The object's size; ObjectNotFoundError if absent."""

    @abstractmethod
    def list_page(
        self, prefix: str, limit: int = 1000, start_after: str | None = None
    ) -> ObjectPage:
        """Up to `limit` objects under prefix, in key order, after `start_after`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object (no error if absent)."""

    @abstractmethod
    def presigned_get_url(self, key: str, expires: timedelta = DEFAULT_URL_EXPIRY) -> str:
        """A URL a browser or PyAV can fetch the object from."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """A stable URI for the object (file:// or s3://)."""

    @contextmanager
    @abstractmethod
    def local_path(self, key: str) -> Iterator[Path]:
        """A local file holding the object while the context is open."""

    def ping(self) -> None:
        """One cheap request that raises when the store does not answer."""
        self.list_page("", limit=1)

    def key_for_uri(self, uri: str) -> str | None:
        """The key of an object of this store given its `uri()`, or None if it is elsewhere."""
        base = self.uri("x")[:-1]
        if not uri.startswith(base):
            return None
        key = unquote(uri[len(base) :])
        try:
            return validate_key(key)
        except InvalidKeyError:
            return None

    def get_file(self, key: str, path: str | Path) -> None:
        Path(path).write_bytes(self.get_bytes(key))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFoundError:
            return False
        return True

    def list(self, prefix: str, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Every object under prefix, fetched page by page."""
        token = None
        while True:
            page = self.list_page(prefix, limit=page_size, start_after=token)
            yield from page.objects
            if page.next_token is None:
                return
            token = page.next_token

    def delete_keys(self, keys: list[str]) -> int:
        """Remove these objects (absent ones are fine); the count asked for."""
        for key in keys:
            self.delete(key)
        return len(keys)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under a non-empty prefix; the count removed."""
        return self.keep_only(prefix, set())

    def keep_only(self, prefix: str, keep: set[str]) -> int:
        """Remove every object under a non-empty prefix except `keep`; the count removed."""
        if not prefix.strip("/"):
            raise InvalidKeyError(prefix, "refusing to sweep the whole store")
        return self.delete_keys([info.key for info in self.list(prefix) if info.key not in keep])
