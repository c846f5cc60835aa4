"""Object storage: one interface, a local folder or any S3-compatible store (MinIO) behind it."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from pathlib import Path
from urllib.parse import unquote

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

DEFAULT_URL_EXPIRY = timedelta(hours=1)


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

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under a non-empty prefix; the count removed."""
        if not prefix.strip("/"):
            raise InvalidKeyError(prefix, "refusing to delete the whole store")
        keys = [info.key for info in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)


class LocalObjectStore(ObjectStore):
    """Objects as files under a root folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half an object.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as handle:
            handle.write(data)
        os.replace(handle.name, path)

    def put_file(self, key, path, content_type="application/octet-stream"):
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False, prefix=".tmp-") as handle,
            open(path, "rb") as source,
        ):
            shutil.copyfileobj(source, handle)
        os.replace(handle.name, target)

    def get_bytes(self, key):
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFoundError(key) from None

    def stat(self, key):
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        return ObjectInfo(key, path.stat().st_size)

    def list_page(self, prefix, limit=1000, start_after=None):
        validate_prefix(prefix)
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        keys = sorted(
            path.relative_to(self.root).as_posix()
            for path in (base.rglob("*") if base.is_dir() else [])
            if path.is_file() and not path.name.startswith(".tmp-")
        )
        chosen = [
            k for k in keys if k.startswith(prefix) and (start_after is None or k > start_after)
        ]
        page = chosen[:limit]
        objects = [ObjectInfo(k, (self.root / k).stat().st_size) for k in page]
        return ObjectPage(objects, page[-1] if len(chosen) > limit else None)

    def delete(self, key):
        path = self._path(key)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def presigned_get_url(self, key, expires=DEFAULT_URL_EXPIRY):
        return self._path(key).as_uri()

    def uri(self, key):
        return self._path(key).as_uri()

    @contextmanager
    def local_path(self, key):
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        yield path


class S3ObjectStore(ObjectStore):
    """Objects in a bucket of an S3-compatible server, under an optional prefix."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        prefix: str = "",
        secure: bool = True,
        region: str = "us-east-1",
    ):
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        if not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        self.client.put_object(
            self.bucket, self._name(key), io.BytesIO(data), len(data), content_type=content_type
        )

    def put_file(self, key, path, content_type="application/octet-stream"):
        self.client.fput_object(self.bucket, self._name(key), str(path), content_type=content_type)

    def get_bytes(self, key):
        try:
            response = self.client.get_object(self.bucket, self._name(key))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFoundError(key) from None
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def stat(self, key):
        try:
            result = self.client.stat_object(self.bucket, self._name(key))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                raise ObjectNotFoundError(key) from None
            raise
        return ObjectInfo(key, int(result.size or 0))

    def list_page(self, prefix, limit=1000, start_after=None):
        validate_prefix(prefix)
        listing = self.client.list_objects(
            self.bucket,
            prefix=self.prefix + prefix,
            recursive=True,
            start_after=self.prefix + start_after if start_after else None,
        )
        found = list(islice(listing, limit + 1))
        page = [ObjectInfo(o.object_name[len(self.prefix) :], int(o.size or 0)) for o in found]
        has_more = len(page) > limit
        page = page[:limit]
        return ObjectPage(page, page[-1].key if has_more else None)

    def delete(self, key):
        self.client.remove_object(self.bucket, self._name(key))

    def delete_prefix(self, prefix):
        if not prefix.strip("/"):
            raise InvalidKeyError(prefix, "refusing to delete the whole store")
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [DeleteObject(self._name(k)) for k in keys[start : start + 1000]]
            errors = list(self.client.remove_objects(self.bucket, batch))
            if errors:
                raise RuntimeError(f"could not delete {len(errors)} objects under {prefix}")
        return len(keys)

    def presigned_get_url(self, key, expires=DEFAULT_URL_EXPIRY):
        return self.client.presigned_get_object(self.bucket, self._name(key), expires=expires)

    def uri(self, key):
        return f"s3://{self.bucket}/{self._name(key)}"

    @contextmanager
    def local_path(self, key):
        suffix = Path(key).suffix
        with tempfile.TemporaryDirectory(prefix="heimdex-") as folder:
            path = Path(folder) / f"object{suffix}"
            try:
                self.client.fget_object(self.bucket, self._name(key), str(path))
            except S3Error as error:
                if error.code in ("NoSuchKey", "NoSuchObject"):
                    raise ObjectNotFoundError(key) from None
                raise
            yield path
