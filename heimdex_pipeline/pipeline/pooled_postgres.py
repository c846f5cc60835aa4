"""Dagster's PostgreSQL storage with a connection kept per process, for `deploy/dagster.yaml`.

dagster-postgres opens a new connection for every query outside the webserver (its engines use
no pool), and PostgreSQL forks a backend for each. Creating a run of 25 videos writes about 180
planned events, two connections each: 4.5 s a run here, 1.3 s with this storage (back to back,
`benchmarks/inbox_burst.py` and the README). It is the storage the webserver already gets
(`optimize_for_webserver`, without its statement timeout), in the daemon, the code server and
every run worker too. Configured like `storage: postgres:` (the same `postgres_db` or
`postgres_url`), under `storage: custom:`.
"""

from __future__ import annotations

from dagster._core.storage.config import PostgresStorageConfig
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

# One connection stays open per storage (runs, events, schedules) and process; a burst of
# threads may open this many more, closed when returned.
MAX_OVERFLOW = 8
POOL_RECYCLE_S = 3600  # connections older than this are replaced (a proxy's idle timeout)


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose three storages keep a connection instead of opening one a
    query."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, **kwargs):
        super().__init__(postgres_url, should_autocreate_tables, **kwargs)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            # statement_timeout 0: none (the webserver sets its own when it starts)
            storage.optimize_for_webserver(
                statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=MAX_OVERFLOW
            )

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: PostgresStorageConfig
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
