"""Local files given to `heimdex index`: folders expanded to the videos in them, each file named
by one URI however it was written."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from heimdex_pipeline.catalog.video_ids import is_video_file


def source_uri_of(path: Path) -> str:
    """A local file's URI: its resolved absolute path; a path that cannot be resolved (a symlink
    loop) keeps its absolute form, and fails in its own step like any unreadable input."""
    try:
        return path.expanduser().resolve().as_uri()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path.expanduser())).as_uri()


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the video files in them (recursively), sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            is_dir = path.is_dir()
        except OSError:  # a symlink loop, a name too long: let its step say what is wrong
            is_dir = False
        if is_dir:
            found.extend(sorted(p for p in path.rglob("*") if _safe_is_video_file(p)))
        else:
            found.append(path)
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(source_uri_of(path), path)
    return list(unique.values())


def folders_without_videos(paths: Iterable[str | Path]) -> list[Path]:
    """The folders among `paths` that hold no video file (a folder named `x.mp4` among them):
    given by a person, they are said, not silently passed over."""
    empty = []
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            is_dir = path.is_dir()
        except OSError:
            continue
        if is_dir and not expand_inputs([path]):
            empty.append(path)
    return empty


def _safe_is_video_file(path: Path) -> bool:
    try:
        return is_video_file(path)
    except OSError:
        return False
