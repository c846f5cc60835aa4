"""What every step does when it cannot do its job: say so on the video, keep nothing half-made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy import delete

from heimdex_pipeline.catalog.models import Scene, VideoState
from heimdex_pipeline.catalog.videos import set_state
from heimdex_pipeline.keys import derived_prefixes
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.resources import CatalogResource, ObjectStoreResource, VectorStoreResource
from heimdex_pipeline.resources.vector_store import TABLE_PREFIX, quote


def purge_video_outputs(
    video_id: str,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource | None,
) -> None:
    """Remove every scene row, derived object and vector row of a video (the inbox copy stays)."""
    with catalog.session() as session:
        session.execute(delete(Scene).where(Scene.video_id == video_id))
    store = objects.store()
    for prefix in derived_prefixes(video_id):
        store.delete_prefix(prefix)
    if vectors is not None:
        vector_store = vectors.store()
        for name in vector_store.table_names():
            if name.startswith(TABLE_PREFIX + "_"):
                vector_store.db.open_table(name).delete(f"video_id = {quote(video_id)}")


@contextmanager
def video_step(
    context: dg.AssetExecutionContext,
    step: str,
    catalog: CatalogResource,
    objects: ObjectStoreResource,
    vectors: VectorStoreResource | None = None,
) -> Iterator[None]:
    """Run a step for the context's video: on error the video is `failed` with the reason, and
    bad input (InvalidVideoError) also loses every output of the video made so far."""
    video_id = context.partition_key
    try:
        yield
    except InvalidVideoError as error:
        purge_video_outputs(video_id, catalog, objects, vectors)
        with catalog.session() as session:
            set_state(session, video_id, VideoState.FAILED, str(error))
        raise dg.Failure(
            description=f"{step}: {error}",
            metadata={"video_id": video_id, "reason": error.reason},
            allow_retries=False,
        ) from None
    except Exception as error:
        with catalog.session() as session:
            set_state(
                session,
                video_id,
                VideoState.FAILED,
                f"{step} failed: {type(error).__name__}: {error}",
            )
        raise
