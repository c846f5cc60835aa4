"""The S3 object store: MinIO or any S3-compatible server, through the `minio` client."""

from __future__ import annotations

import io
import tempfile
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from urllib.parse import quote, urlparse

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from heimdex_pipeline.settings import S3Settings
from heimdex_pipeline.stores.objects.base import (
    DEFAULT_URL_EXPIRY,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectPage,
    ObjectStore,
    validate_key,
    validate_prefix,
)

_NOT_FOUND = ("NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket")


class S3ObjectStore(ObjectStore):
    """Objects in a bucket of an S3-compatible server, under an optional prefix."""

    def __init__(self, s3: S3Settings, bucket: str, prefix: str = ""):
        self.client = Minio(
            s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key.get_secret_value(),
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

    def ping(self) -> None:
        # the server answering is enough: a bucket not made yet is made on the first write
        self.client.bucket_exists(self.bucket)

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
        # quoted, as file:// URIs are: a key may hold `%`, `+` or spaces (`key_for_uri` unquotes)
        return f"s3://{self.bucket}/{quote(self._name(key), safe='/')}"

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
