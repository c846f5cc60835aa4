"""CatalogResource: the `Video` and `Scene` tables, checked to be at the code's schema."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from heimdex_pipeline.catalog.database import Catalog
from heimdex_pipeline.settings import check_database_url


class CatalogResource(dg.ConfigurableResource):
    """The catalog database. Opening it checks the schema revision (migrations of a server's
    catalog are a deploy step: `heimdex db upgrade`; an embedded one is migrated on first use),
    so a step or a sensor never runs against tables it does not know."""

    database_url: str
    _catalog: Catalog | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._catalog = Catalog(check_database_url(self.database_url))
        self._catalog.ready()

    def catalog(self) -> Catalog:
        if self._catalog is None:  # used outside a run or sensor (tests, scripts)
            self.setup_for_execution(dg.build_init_resource_context())
        assert self._catalog is not None
        return self._catalog
