"""Where each step writes its objects: the layout of the object store in one place."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from heimdex_pipeline.catalog.video_ids import file_name_of

if TYPE_CHECKING:
    from heimdex_pipeline.stores.objects import ObjectStore

DERIVED_PREFIXES = ("sidecars", "thumbnails", "frames", "embeddings", "transcripts", "faces")

# Drop videos here (in the object store) and the inbox sensor indexes them.
INCOMING_PREFIX = "incoming/"
# Copies of videos that came from outside the store (local files given to `heimdex index`).
INBOX_PREFIX = "inbox/"
# What a run's steps hand each other (which videos are still going), so a re-execution on
# another machine finds it.
RUNS_PREFIX = "runs/"


def incoming_folder(key: str) -> str | None:
    """The first folder of a key under incoming/ (`incoming/<user>/…`: whose it is); None for
    a key right under incoming/."""
    rest = key[len(INCOMING_PREFIX) :] if key.startswith(INCOMING_PREFIX) else ""
    folder, slash, _ = rest.partition("/")
    return folder if slash else None


def user_incoming_prefix(owner: str) -> str:
    """Where a user's uploads go: the inbox sensor indexes them into their library."""
    return f"{INCOMING_PREFIX}{owner}/"


def video_of_key(key: str) -> str | None:
    """The video an object derived from one belongs to (thumbnails, faces, frames, … and inbox
    copies are under `<prefix>/<video id>/`); None for any other key."""
    prefix, _, rest = key.partition("/")
    video_id, slash, _ = rest.partition("/")
    if slash and video_id and (prefix in DERIVED_PREFIXES or f"{prefix}/" == INBOX_PREFIX):
        return video_id
    return None


def inbox_prefix(video_id: str) -> str:
    return f"{INBOX_PREFIX}{video_id}/"


def inbox_key(video_id: str, file_name: str) -> str:
    """Where a video from outside the store is copied to."""
    suffix = PurePosixPath(file_name).suffix.lower()
    return f"{inbox_prefix(video_id)}source{suffix}"


def source_key(store: ObjectStore, video_id: str, source_uri: str) -> str:
    """The key the steps read the video from: the object itself when it is already in the store
    (dropped in `incoming/`), else its copy in the inbox."""
    return store.key_for_uri(source_uri) or inbox_key(video_id, file_name_of(source_uri))


def sidecar_prefix(video_id: str) -> str:
    return f"sidecars/{video_id}/"


def sidecar_key(video_id: str, scene_id: str) -> str:
    return f"{sidecar_prefix(video_id)}{scene_id}.json"


def thumbnail_prefix(video_id: str) -> str:
    return f"thumbnails/{video_id}/"


def thumbnail_key(video_id: str, scene_id: str) -> str:
    return f"{thumbnail_prefix(video_id)}{scene_id}.webp"


def candidates_key(video_id: str) -> str:
    """Frames kept by the scenes pass, for the thumbnails step to choose from."""
    return f"frames/{video_id}/candidates.zip"


def embedder_frames_key(video_id: str) -> str:
    """The frames per scene the embedder reads."""
    return f"frames/{video_id}/embedder.zip"


def vectors_key(video_id: str) -> str:
    return f"embeddings/{video_id}/vectors.parquet"


def transcript_key(video_id: str, model_id: str) -> str:
    """The transcript of a video by one speech model: status, figures and lines by scene."""
    return f"transcripts/{video_id}/{model_id}.json"


def faces_prefix(video_id: str) -> str:
    return f"faces/{video_id}/"


def face_crop_key(video_id: str, face_id: str) -> str:
    """A face's crop (WebP), shown on the people and video pages."""
    return f"{faces_prefix(video_id)}{face_id}.webp"


def derived_prefixes(video_id: str) -> list[str]:
    """Everything made from a video (not the video itself)."""
    return [f"{prefix}/{video_id}/" for prefix in DERIVED_PREFIXES]


def run_prefix(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}/"


def run_handoff_key(run_id: str, step: str) -> str:
    """What a step of a run handed the next one."""
    return f"{run_prefix(run_id)}{step}.json"
