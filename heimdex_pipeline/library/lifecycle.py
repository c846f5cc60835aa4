"""A video's outputs, and the video itself, removed from every store."""

from __future__ import annotations

from collections.abc import Callable

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import (
    activate_complete_models,
    forget_outputs,
    get_video,
    set_state,
)
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.keys import derived_prefixes, inbox_prefix


def _purges(video_id: str, stores: Stores) -> list[tuple[str, Callable[[], object]]]:
    """Removing every scene row, derived object and vector row of a video, store by store."""

    def forget() -> None:
        with stores.catalog.session() as session:
            forget_outputs(session, video_id)

    def objects() -> None:
        for prefix in derived_prefixes(video_id):
            stores.objects.delete_prefix(prefix)

    return [
        ("catalog", forget),
        ("object store", objects),
        ("vector store", lambda: stores.vectors.delete_video(video_id)),
    ]


def purge_video_outputs(video_id: str, stores: Stores) -> None:
    """Remove every scene row, derived object and vector row of a video (its source stays)."""
    for _, purge in _purges(video_id, stores):
        purge()


def purge_what_can_be_reached(video_id: str, stores: Stores) -> list[str]:
    """`purge_video_outputs`, going on past a store that cannot be reached (the outage that
    failed the video may still be on). Answers the stores left as they were; the video's next
    run replaces what is left there."""
    from heimdex_pipeline.library.transient import is_transient

    left = []
    for name, purge in _purges(video_id, stores):
        try:
            purge()
        except Exception as error:
            if not is_transient(error):
                raise
            left.append(name)
    return left


def fail_video(video_id: str, stores: Stores, reason: str) -> None:
    """The video could not be indexed: keep nothing half-made (in every store that can be
    reached), and say why on its row."""
    left = purge_what_can_be_reached(video_id, stores)
    if left:
        reason += f" [its outputs in the {' and '.join(left)} could not be removed yet]"
    with stores.catalog.session() as session:
        deleted = get_video(session, video_id).state is VideoState.DELETED
        if not deleted:
            set_state(session, video_id, VideoState.FAILED, reason)
        activate_complete_models(session)
    if deleted:  # deleted while a run had it: what the run copied in goes too
        stores.objects.delete_prefix(inbox_prefix(video_id))


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
