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
from urllib.parse import unquote, urlparse

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from heimdex_pipeline.settings import S3Settings

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


class LocalObjectStore(ObjectStore):
    """Objects as files under a root folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _write(self, key: str, fill) -> None:
        """Write to a temporary file beside the target, then rename: readers never see half an
        object, and a failed write leaves nothing behind."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-")  # noqa: SIM115
        try:
            with handle:
                fill(handle)
            os.chmod(handle.name, FILE_MODE)
            os.replace(handle.name, path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        self._write(key, lambda handle: handle.write(data))

    def put_file(self, key, path, content_type="application/octet-stream"):
        with open(path, "rb") as source:
            self._write(key, lambda handle: shutil.copyfileobj(source, handle))

    def get_bytes(self, key):
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFoundError(key) from None

    def _info(self, key: str) -> ObjectInfo:
        facts = (self.root / key).stat()
        return ObjectInfo(key, facts.st_size, f"{facts.st_size}-{facts.st_mtime_ns}")

    def stat(self, key):
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        return self._info(key)

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
        objects = [self._info(k) for k in page]
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


_NOT_FOUND = ("NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket")


class S3ObjectStore(ObjectStore):
    """Objects in a bucket of an S3-compatible server, under an optional prefix."""

    def __init__(self, s3: S3Settings, bucket: str, prefix: str = ""):
        self.client = Minio(
            s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            secure=s3.secure,
            region=s3.region,
        )
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._bucket_checked = False
        self._signer = self.client

    def sign_for(self, endpoint: str, secure: bool | None = None) -> None:
        """Sign presigned URLs for `endpoint` (how browsers reach the server, when not as this
        process does). Signing is local: no request is made to that endpoint."""
        s3 = self.client._provider
        credentials = s3.retrieve() if s3 is not None else None
        self._signer = Minio(
            endpoint,
            access_key=credentials.access_key if credentials else None,
            secret_key=credentials.secret_key if credentials else None,
            secure=self.client._base_url.is_https if secure is None else secure,
            region=self.client._base_url.region,
        )

    @classmethod
    def from_url(cls, url: str, s3: S3Settings) -> S3ObjectStore:
        """The store at s3://bucket/prefix."""
        parsed = urlparse(url)
        return cls(s3, parsed.netloc, parsed.path)

    def _ensure_bucket(self) -> None:
        # Checked on first write, not on construction: opening a store never touches the network,
        # so an outage surfaces inside a step (where it is retried), not while resources load.
        if not self._bucket_checked:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            self._bucket_checked = True

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        self._ensure_bucket()
        self.client.put_object(
            self.bucket, self._name(key), io.BytesIO(data), len(data), content_type=content_type
        )

    def put_file(self, key, path, content_type="application/octet-stream"):
        self._ensure_bucket()
        self.client.fput_object(self.bucket, self._name(key), str(path), content_type=content_type)

    def get_bytes(self, key):
        try:
            response = self.client.get_object(self.bucket, self._name(key))
        except S3Error as error:
            if error.code in _NOT_FOUND:
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
            if error.code in _NOT_FOUND:
                raise ObjectNotFoundError(key) from None
            raise
        return ObjectInfo(key, int(result.size or 0), (result.etag or "").strip('"'))

    def list_page(self, prefix, limit=1000, start_after=None):
        validate_prefix(prefix)
        listing = self.client.list_objects(
            self.bucket,
            prefix=self.prefix + prefix,
            recursive=True,
            start_after=self.prefix + start_after if start_after else None,
        )
        try:
            # `limit` keys, not limit + 1: one LIST request for a page of up to 1000. A full
            # page may be the last; the next call then gets an empty page and a None token.
            found = list(islice(listing, limit))
        except S3Error as error:
            if error.code != "NoSuchBucket":
                raise
            found = []
        page = [
            ObjectInfo(
                o.object_name[len(self.prefix) :], int(o.size or 0), (o.etag or "").strip('"')
            )
            for o in found
        ]
        return ObjectPage(page, page[-1].key if len(page) == limit else None)

    def delete(self, key):
        try:
            self.client.remove_object(self.bucket, self._name(key))
        except S3Error as error:
            if error.code != "NoSuchBucket":
                raise

    def delete_keys(self, keys):
        for start in range(0, len(keys), 1000):
            batch = [DeleteObject(self._name(k)) for k in keys[start : start + 1000]]
            errors = list(self.client.remove_objects(self.bucket, batch))
            if errors:
                raise RuntimeError(f"could not delete {len(errors)} objects, e.g. {errors[0]}")
        return len(keys)

    def presigned_get_url(self, key, expires=DEFAULT_URL_EXPIRY):
        return self._signer.presigned_get_object(self.bucket, self._name(key), expires=expires)

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
                if error.code in _NOT_FOUND:
                    raise ObjectNotFoundError(key) from None
                raise
            yield path


def open_object_store(location: str, s3: S3Settings | None) -> ObjectStore:
    """The store at a folder or at s3://bucket/prefix (which needs `s3`)."""
    if location.startswith("s3://"):
        if s3 is None:
            raise ValueError(f"{location}: an s3:// object store needs HEIMDEX_S3_ENDPOINT")
        return S3ObjectStore.from_url(location, s3)
    return LocalObjectStore(location)
