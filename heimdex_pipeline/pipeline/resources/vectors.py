"""VectorStoreResource: LanceDB, one scenes table per embedding model."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from heimdex_pipeline.pipeline.resources.s3 import S3Resource
from heimdex_pipeline.settings import normalise_location
from heimdex_pipeline.stores.vectors import VectorStore


class VectorStoreResource(dg.ConfigurableResource):
    """LanceDB in a local folder or on the S3 server (connected on first use)."""

    uri: str
    s3: S3Resource
    default_owner: str = "local"  # whose rows a table from before owners holds
    _store: VectorStore | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        uri = normalise_location("HEIMDEX_LANCEDB_URI", self.uri)
        self._store = VectorStore(uri, self.s3.settings(), default_owner=self.default_owner)

    def store(self) -> VectorStore:
        if self._store is None:
            self.setup_for_execution(dg.build_init_resource_context())
        assert self._store is not None
        return self._store
