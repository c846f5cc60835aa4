"""Video ids: stable, unique, readable partition keys made from a source URI."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

VIDEO_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv",
}  # fmt: skip


def source_uri_for(path: str | Path) -> str:
    """The canonical URI of a local file: file:// and its absolute, resolved path."""
    return Path(path).expanduser().resolve().as_uri()


def file_name_of(source_uri: str) -> str:
    """The last part of a source URI's path, decoded."""
    return PurePosixPath(unquote(urlparse(source_uri).path)).name or "video"


def slug(text: str, max_length: int = 40) -> str:
    """Lower-case ASCII letters, digits and single dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return cleaned[:max_length].strip("-") or "video"


def video_id_for(source_uri: str) -> str:
    """`<slug of the file name without extension>-<8 hex of the URI's SHA-256>`."""
    name = file_name_of(source_uri)
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    digest = hashlib.sha256(source_uri.encode()).hexdigest()[:8]
    return f"{slug(stem)}-{digest}"


def is_video_name(name: str) -> bool:
    """A file name (or key) that looks like a finished video: a known extension, not hidden."""
    base = PurePosixPath(name).name
    return PurePosixPath(base).suffix.lower() in VIDEO_EXTENSIONS and not base.startswith(".")


def is_video_file(path: Path) -> bool:
    return is_video_name(path.name) and path.is_file()
