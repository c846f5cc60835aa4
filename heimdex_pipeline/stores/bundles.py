"""Many small files as one object: a zip (stored, not compressed: JPEG and WebP are already)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping

from heimdex_pipeline.media.frames import FrameSample

_MANIFEST = "manifest.json"


def pack_files(files: Mapping[str, bytes]) -> bytes:
    """The same files give the same bytes: entries in name order, no timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, files[name])
    return buffer.getvalue()


def unpack_files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pack_samples(samples: list[FrameSample]) -> bytes:
    """Frame samples with their times and quality measures."""
    manifest = []
    files: dict[str, bytes] = {}
    for number, sample in enumerate(samples):
        name = f"{number:06d}.jpg"
        files[name] = sample.jpeg
        manifest.append(
            {
                "file": name,
                "time_s": sample.time_s,
                "luma": sample.luma,
                "contrast": sample.contrast,
                "sharpness": sample.sharpness,
            }
        )
    files[_MANIFEST] = json.dumps(manifest).encode()
    return pack_files(files)


def unpack_samples(data: bytes) -> list[FrameSample]:
    files = unpack_files(data)
    return [
        FrameSample(
            time_s=entry["time_s"],
            jpeg=files[entry["file"]],
            luma=entry["luma"],
            contrast=entry["contrast"],
            sharpness=entry["sharpness"],
        )
        for entry in json.loads(files[_MANIFEST])
    ]
