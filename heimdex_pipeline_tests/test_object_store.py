"""One contract for both object stores: a local folder and an S3-compatible server."""

import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from heimdex_pipeline.stores.objects import (
    InvalidKeyError,
    LocalObjectStore,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
    validate_key,
)
from heimdex_pipeline_tests.conftest import s3_settings


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return S3ObjectStore(s3_settings(endpoint), bucket, "some/prefix")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_bytes_and_files_round_trip(store: ObjectStore, tmp_path: Path):
    store.put_bytes("a/b/c.bin", b"\x00hello")
    source = tmp_path / "source.txt"
    source.write_bytes(b"from a file")
    store.put_file("a/file.txt", source)
    assert store.get_bytes("a/b/c.bin") == b"\x00hello"
    assert store.get_bytes("a/file.txt") == b"from a file"
    target = tmp_path / "copy.txt"
    store.get_file("a/file.txt", target)
    assert target.read_bytes() == b"from a file"
    with store.local_path("a/file.txt") as local:
        assert Path(local).read_bytes() == b"from a file"


def test_put_replaces_and_stat_reports_the_size(store: ObjectStore):
    store.put_bytes("k.txt", b"12345")
    store.put_bytes("k.txt", b"12")
    assert store.stat("k.txt").size == 2
    assert store.exists("k.txt") and not store.exists("missing.txt")


def test_missing_objects_raise_not_found(store: ObjectStore):
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("nope/x")
    with pytest.raises(ObjectNotFoundError):
        store.stat("nope/x")


def test_listing_is_sorted_paginated_and_limited_to_the_prefix(store: ObjectStore):
    keys = [f"frames/v1/{i:03d}.jpg" for i in range(7)]
    for key in keys:
        store.put_bytes(key, b"x")
    store.put_bytes("frames/v10/other.jpg", b"x")
    store.put_bytes("thumbnails/v1/a.webp", b"x")
    first = store.list_page("frames/v1/", limit=3)
    assert [o.key for o in first.objects] == keys[:3] and first.next_token == keys[2]
    second = store.list_page("frames/v1/", limit=3, start_after=first.next_token)
    assert [o.key for o in second.objects] == keys[3:6]
    assert [o.key for o in store.list("frames/v1/", page_size=2)] == keys


def test_delete_prefix_removes_only_that_prefix(store: ObjectStore):
    for key in ["sidecars/v1/a.json", "sidecars/v1/b.json", "sidecars/v2/a.json"]:
        store.put_bytes(key, b"{}")
    assert store.delete_prefix("sidecars/v1/") == 2
    assert [o.key for o in store.list("sidecars/")] == ["sidecars/v2/a.json"]
    with pytest.raises(InvalidKeyError):
        store.delete_prefix("")


def test_presigned_url_serves_the_object(store: ObjectStore):
    store.put_bytes("thumbnails/v/s.webp", b"RIFF-not-really-webp")
    url = store.presigned_get_url("thumbnails/v/s.webp")
    assert fetch(url) == b"RIFF-not-really-webp"
    short = store.presigned_get_url("thumbnails/v/s.webp", expires=timedelta(minutes=5))
    assert fetch(short) == b"RIFF-not-really-webp"


@pytest.mark.slow
def test_s3_presigned_url_expires_in_an_hour_by_default(s3_endpoint: str, s3_bucket: str):
    store = S3ObjectStore(s3_settings(s3_endpoint), s3_bucket)
    store.put_bytes("x.txt", b"x")
    assert "X-Amz-Expires=3600" in store.presigned_get_url("x.txt")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../up",
        "a/../../b",
        "a\\b",
        "a/./b",
        "a//b",
        "tab\there",
        "nul\x00",
        "..",
    ],
)
def test_unsafe_keys_are_refused_with_a_clear_error(store: ObjectStore, key: str):
    with pytest.raises(InvalidKeyError, match="invalid object key"):
        store.put_bytes(key, b"x")


def test_ordinary_keys_with_unicode_and_spaces_are_fine():
    assert validate_key("inbox/vidéo 1/source.mp4") == "inbox/vidéo 1/source.mp4"


def test_bundles_of_the_same_files_are_the_same_bytes():
    import time

    from heimdex_pipeline.stores.bundles import pack_files, unpack_files

    files = {"b/1.jpg": b"\xff\xd8two", "a/0.jpg": b"\xff\xd8one"}
    first = pack_files(files)
    time.sleep(2.1)  # a zip entry's timestamp has a two-second resolution
    assert pack_files(dict(reversed(list(files.items())))) == first
    assert unpack_files(first) == files


def test_local_objects_are_readable_by_others_as_the_umask_allows(tmp_path: Path):
    import os

    from heimdex_pipeline.stores.objects.base import FILE_MODE

    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes("thumbnails/a.webp", b"x")
    mode = os.stat(tmp_path / "objects" / "thumbnails" / "a.webp").st_mode & 0o777
    assert mode == FILE_MODE and mode & 0o044  # group and others may read (umask 022)


def test_a_failed_local_write_leaves_no_temporary_file(tmp_path: Path):
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(TypeError):  # fails after the temporary file was opened
        store.put_bytes("incoming/clip.mp4", "text, not bytes")  # type: ignore[arg-type]
    assert [p.name for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []
