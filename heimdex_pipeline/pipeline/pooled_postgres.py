"""Dagster's PostgreSQL storage made cheaper to create runs with, for `deploy/dagster.yaml`.

Creating a run over a range of 25 videos, Dagster writes about 180 planned events and, for each
of the seven steps, reads the whole `videos` partition list to resolve the range. Two changes:

- a connection kept per storage and instance (the daemon, the webserver and a run worker each
  hold one instance; a sensor's lives for one evaluation): dagster-postgres opens a new one for
  every query outside the webserver (no pool), and PostgreSQL forks a backend for each. It is
  what the webserver already gets (`optimize_for_webserver`), with a check before each use so
  that a PostgreSQL restart costs no query;
- the partition list read once a second at most per instance (a list this instance changed is
  read again at once): the seven reads of one run creation become one;
- with `kept_partitions_def: videos` in its config, an asset's health rebuilt from the kept
  partitions, not from every key it ever had (`kept_health.py`; `heimdex retire`).

Figures: `benchmarks/inbox_burst.py` and the README. Configured like `storage: postgres:` (the
same `postgres_db` or `postgres_url`), under `storage: custom:`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from dagster import AssetKey
from dagster._config import Field, StringSource
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import PostgresStorageConfig
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._serdes import ConfigurableClassData
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_config,
    pg_url_from_config,
)

from heimdex_pipeline.pipeline import kept_health

if TYPE_CHECKING:
    from dagster_postgres.auth import PgTokenProvider

# One connection stays open per storage (runs, events) and instance; a burst of threads may
# open this many more, closed when returned.
MAX_OVERFLOW = 8
POOL_RECYCLE_S = 3600  # connections older than this are replaced (a proxy's idle timeout)
# How long a partition list read stays good in this process (another process's change shows
# after at most this long; this process's own at once).
PARTITIONS_FRESH_S = 1.0


class CachedPartitionsEventLogStorage(PostgresEventLogStorage):
    """The event log storage keeping a connection (closed when the instance is disposed), with
    `get_dynamic_partitions` read at most once a second. A read
    that began before this process changed the list is never kept (the daemon's threads share
    one storage: the asset daemon's read must not hide the sensor's new partitions).

    `kept_partitions_def`: the dynamic partitions definition every partitioned asset of the
    instance uses; each asset's materialized and planned partitions are then read from it."""

    def __init__(self, *args, kept_partitions_def: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        _keep_a_connection(self)
        self.kept_partitions_def = kept_partitions_def
        self._partitions: dict[str, tuple[float, list[str]]] = {}
        self._changes = 0  # changes this process made to any partition list
        self._lock = threading.Lock()

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        hit = self._partitions.get(partitions_def_name)
        if hit is not None and time.monotonic() - hit[0] < PARTITIONS_FRESH_S:
            return list(hit[1])
        changes, began = self._changes, time.monotonic()
        keys = list(super().get_dynamic_partitions(partitions_def_name))
        with self._lock:
            if self._changes == changes:
                self._partitions[partitions_def_name] = (began, keys)
        return list(keys)

    def get_existing_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> set[str]:
        if len(partition_keys) > kept_health.LIST_READ_FROM:  # one read of the list: the
            # base storage's way (its cached read here), not a query per 1,000 keys
            return set(
                EventLogStorage.get_existing_dynamic_partitions(
                    self, partitions_def_name, partition_keys
                )
            )
        return set(super().get_existing_dynamic_partitions(partitions_def_name, partition_keys))

    def get_materialized_partitions(
        self,
        asset_key: AssetKey,
        before_cursor: int | None = None,
        after_cursor: int | None = None,
    ) -> set[str]:
        if self.kept_partitions_def and before_cursor is None and after_cursor is None:
            return kept_health.materialized(self, self.kept_partitions_def, asset_key)
        return super().get_materialized_partitions(asset_key, before_cursor, after_cursor)

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key: AssetKey, after_storage_id: int | None = None
    ) -> Mapping[str, tuple[str, int]]:
        if self.kept_partitions_def and after_storage_id is None:
            return kept_health.planned_not_materialized(self, self.kept_partitions_def, asset_key)
        return super().get_latest_asset_partition_materialization_attempts_without_materializations(
            asset_key, after_storage_id
        )

    def _changed(self) -> None:
        with self._lock:
            self._changes += 1
            self._partitions.clear()

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        self._changed()
        super().add_dynamic_partitions(partitions_def_name, partition_keys)
        self._changed()

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        self._changed()
        super().delete_dynamic_partition(partitions_def_name, partition_key)
        self._changed()

    def forget_partitions(self, change: Callable[[], None]) -> None:
        """`change` made to the partition lists behind this storage's back (a batch of SQL):
        no list read before or during it is kept."""
        self._changed()
        change()
        self._changed()

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()


def _keep_a_connection(storage: PostgresRunStorage | PostgresEventLogStorage) -> None:
    """The storage's engine replaced by one that keeps a connection, checked before each use
    (a PostgreSQL restart would otherwise fail the first query after it); the webserver swaps
    in its own when it starts (`optimize_for_webserver`)."""
    storage._engine.dispose()
    storage._engine = create_pg_engine(
        storage.postgres_url,
        storage._token_provider,
        isolation_level="AUTOCOMMIT",
        pool_size=1,
        max_overflow=MAX_OVERFLOW,
        pool_recycle=POOL_RECYCLE_S,
        pool_pre_ping=True,
    )


class PooledRunStorage(PostgresRunStorage):
    """The run storage keeping a connection, closed when the instance is disposed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _keep_a_connection(self)

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose run and event log storages keep a connection instead of
    opening one a query, and whose event log storage reads the partition lists at most once a
    second. `DagsterInstance.dispose` closes both kept connections (a sensor's instance lives
    for one evaluation); the schedule storage, which it never disposes, keeps opening its own."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: PgTokenProvider | None = None,
        kept_partitions_def: str | None = None,
    ):
        # DagsterPostgresStorage.__init__ less its plain run and event log storages, which it
        # would open (tables inspected) only to have them replaced: once per sensor evaluation
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PooledRunStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._event_log_storage = CachedPartitionsEventLogStorage(
            postgres_url,
            should_autocreate_tables,
            token_provider=token_provider,
            kept_partitions_def=kept_partitions_def,
        )
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls):
        return {
            **pg_config(),
            "kept_partitions_def": Field(
                StringSource,
                is_required=False,
                description="The dynamic partitions definition every partitioned asset of "
                "the instance uses: asset health is read from its kept partitions.",
            ),
        }

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: PostgresStorageConfig
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
            kept_partitions_def=config_value.get("kept_partitions_def"),
        )
