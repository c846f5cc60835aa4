"""A video's outputs, and the video itself, removed from every store."""

from __future__ import annotations

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import (
    activate_complete_models,
    forget_outputs,
    get_video,
    set_state,
)
from heimdex_pipeline.keys import derived_prefixes, inbox_prefix
from heimdex_pipeline.stores import Stores


def purge_video_outputs(video_id: str, stores: Stores) -> None:
    """Remove every scene row, derived object and vector row of a video (its source stays)."""
    with stores.catalog.session() as session:
        forget_outputs(session, video_id)
    for prefix in derived_prefixes(video_id):
        stores.objects.delete_prefix(prefix)
    stores.vectors.delete_video(video_id)


def fail_video(video_id: str, stores: Stores, reason: str) -> None:
    """The video could not be indexed: keep nothing half-made, and say why on its row."""
    purge_video_outputs(video_id, stores)
    with stores.catalog.session() as session:
        set_state(session, video_id, VideoState.FAILED, reason)
        activate_complete_models(session)


def delete_video(video_id: str, stores: Stores) -> None:
    """Mark the video `deleted` and remove everything of it: rows, objects (its copy in the
    inbox, or its source when that is an object of the store) and vectors. Its file outside the
    store, if any, is left alone. Idempotent."""
    with stores.catalog.session() as session:
        video = get_video(session, video_id)
        source_key = stores.objects.key_for_uri(video.source_uri)
    purge_video_outputs(video_id, stores)
    stores.objects.delete_prefix(inbox_prefix(video_id))
    if source_key is not None:
        stores.objects.delete(source_key)
    with stores.catalog.session() as session:
        set_state(session, video_id, VideoState.DELETED)
        activate_complete_models(session)
