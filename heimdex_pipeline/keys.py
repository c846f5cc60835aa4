"""Where each step writes its objects: the layout of the object store in one place."""

from __future__ import annotations

from pathlib import PurePosixPath

DERIVED_PREFIXES = ("sidecars", "thumbnails", "frames", "embeddings")


def inbox_key(video_id: str, file_name: str) -> str:
    suffix = PurePosixPath(file_name).suffix.lower()
    return f"inbox/{video_id}/source{suffix}"


def sidecar_key(video_id: str, scene_id: str) -> str:
    return f"sidecars/{video_id}/{scene_id}.json"


def thumbnail_key(video_id: str, scene_id: str) -> str:
    return f"thumbnails/{video_id}/{scene_id}.webp"


def candidates_key(video_id: str) -> str:
    """Frames kept by the scenes pass, for the thumbnails step to choose from."""
    return f"frames/{video_id}/candidates.zip"


def embedder_frames_key(video_id: str) -> str:
    """The frames per scene the embedder reads."""
    return f"frames/{video_id}/embedder.zip"


def vectors_key(video_id: str) -> str:
    return f"embeddings/{video_id}/vectors.parquet"


def derived_prefixes(video_id: str) -> list[str]:
    return [f"{prefix}/{video_id}/" for prefix in DERIVED_PREFIXES]
