"""What every route shares: the settings, the stores, the searcher with its warm model, and
the links a browser can fetch media by. One per process, made by `create_app`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from heimdex_pipeline.catalog.users import has_users
from heimdex_pipeline.search.searcher import NoSearchIndexError, Searcher
from heimdex_pipeline.serve.links import MediaLinks
from heimdex_pipeline.serve.sign_in import SignInLimiter
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores import Stores

log = logging.getLogger("heimdex.serve")


@dataclass
class Service:
    """The stores, the searcher (with its warm model), the settings."""

    settings: Settings
    stores: Stores
    searcher: Searcher
    links: MediaLinks
    sign_ins: SignInLimiter = field(default_factory=SignInLimiter)
    model_error: str | None = None
    model_ready: bool = False
    _catalog_ok: bool = False
    _users_seen: bool = False

    @classmethod
    def open(cls, settings: Settings, stores: Stores) -> Service:
        links = MediaLinks(stores.objects, settings)
        searcher = Searcher(stores, (settings.clip_model, settings.clip_pretrained), link=links)
        return cls(settings=settings, stores=stores, searcher=searcher, links=links)

    def has_users(self, session) -> bool:
        """Whether the catalog has users: once it has, it always will (users are revoked, never
        removed), so only the answer "none yet" is asked again, each request."""
        if not self._users_seen:
            self._users_seen = has_users(session)
        return self._users_seen

    def catalog_ready(self) -> None:
        """CatalogNotReadyError (a 503) until the catalog exists at the code's schema."""
        if not self._catalog_ok:
            self.stores.catalog.ready()
            self._catalog_ok = True

    def warm(self) -> None:
        """Load the active model now, so the first query does not pay for it."""
        try:
            self.searcher.encoder()
            self.model_ready = True
        except NoSearchIndexError as error:
            self.model_error = str(error)
        except Exception as error:
            self.model_error = f"{type(error).__name__}: {error}"
            log.warning("could not load the search model: %s", self.model_error)

    def notes(self) -> list[str]:
        """What the pages should say about the model (why search cannot answer yet)."""
        return [self.model_error] if self.model_error else []
