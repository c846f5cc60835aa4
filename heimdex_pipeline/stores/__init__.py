"""Plain clients of the three stores (no Dagster): the catalog, the objects, the vectors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from heimdex_pipeline.catalog.database import Catalog
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores.objects import ObjectStore, open_object_store
from heimdex_pipeline.stores.vectors import VectorStore


@dataclass(frozen=True)
class Stores:
    """Where a video's rows, objects and vectors live."""

    catalog: Catalog
    objects: ObjectStore
    vectors: VectorStore

    def probes(self) -> dict[str, Callable[[], object]]:
        """One cheap read from each store, raising when it does not answer (`/health`, and a
        re-run after an outage waiting for the stores)."""
        return {
            "catalog": self.catalog.check_schema,
            "objects": self.objects.ping,
            "vectors": self.vectors.table_names,
        }


def check_reachable(stores: Stores) -> None:
    """Read once from the object store and the vector store, raising what either raises (an
    unreachable server): a command says so in one line before it registers anything."""
    probes = stores.probes()
    for name in ("objects", "vectors"):
        probes[name]()


def open_stores(settings: Settings, check_schema: bool = True) -> Stores:
    """The stores the settings name; the catalog at the code's schema (`Catalog.ready`)."""
    catalog = Catalog(settings.database_url)
    if check_schema:
        catalog.ready()
    return Stores(
        catalog=catalog,
        objects=open_object_store(settings.object_store, settings.s3),
        vectors=VectorStore(
            settings.lancedb_uri,
            settings.s3 if settings.lancedb_is_s3 else None,
            default_owner=settings.default_owner,
        ),
    )
