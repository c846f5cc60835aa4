"""ObjectStoreResource: inbox videos, sidecars, thumbnails, frames and vectors as objects."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from heimdex_pipeline.pipeline.resources.s3 import S3Resource
from heimdex_pipeline.settings import normalise_location
from heimdex_pipeline.stores.objects import ObjectStore, open_object_store


class ObjectStoreResource(dg.ConfigurableResource):
    """A local folder, or s3://bucket/prefix on the S3 server `s3` describes."""

    location: str
    s3: S3Resource
    _store: ObjectStore | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        location = normalise_location("HEIMDEX_OBJECT_STORE", self.location)
        self._store = open_object_store(location, self.s3.settings())

    def store(self) -> ObjectStore:
        if self._store is None:
            self.setup_for_execution(dg.build_init_resource_context())
        assert self._store is not None
        return self._store
