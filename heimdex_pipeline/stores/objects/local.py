"""The local object store: objects as files under a folder (the embedded default)."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from heimdex_pipeline.stores.objects.base import (
    DEFAULT_URL_EXPIRY,
    FILE_MODE,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectPage,
    ObjectStore,
    validate_key,
    validate_prefix,
)


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
