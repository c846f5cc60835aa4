"""Engines, sessions and migrations for the catalog database.

Migrations are a deploy step (`heimdex db upgrade`): they run under a lock, so any number of
processes may call `upgrade` at once. Steps never migrate; they check the schema revision and stop
with a clear message when the database is behind.
"""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from heimdex_pipeline.settings import redact_url

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_lock key: any constant the catalog's migrations alone use.
_MIGRATION_LOCK_KEY = zlib.crc32(b"heimdex catalog migrations")


class CatalogNotReadyError(RuntimeError):
    """The catalog database is missing tables or behind the code's schema revision."""


def alembic_config(database_url: str) -> Config:
    """An Alembic config for this database, with no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def _sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


@contextmanager
def _migration_lock(engine: Engine, database_url: str) -> Iterator[None]:
    """Hold the catalog's migration lock: an advisory lock on PostgreSQL, a file lock beside a
    SQLite database."""
    sqlite_file = _sqlite_path(database_url)
    if sqlite_file is not None:
        with open(sqlite_file.with_name(sqlite_file.name + ".migrate.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
                connection.commit()
        return
    yield


def upgrade(database_url: str, revision: str = "head", default_owner: str | None = None) -> None:
    """Apply migrations up to `revision`, one process at a time. Videos from before users
    become `default_owner`'s (else HEIMDEX_DEFAULT_OWNER's, else `local`'s)."""
    sqlite_file = _sqlite_path(database_url)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    engine = new_engine(database_url)
    try:
        with _migration_lock(engine, database_url), engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            config.attributes["default_owner"] = default_owner
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Transactions are begun by us (below), not by the driver.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
    cursor.close()


def _sqlite_begin(connection) -> None:
    # IMMEDIATE takes the write lock up front: two processes (runs, the CLI, a sensor) then wait
    # for each other (busy_timeout) instead of one failing with "database is locked" when a
    # read transaction turns into a write.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_reader_pragmas(dbapi_connection, record) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # a write in a reading session fails, loudly
    cursor.close()


def _sqlite_begin_reading(connection) -> None:
    # A plain (deferred) BEGIN: the snapshot starts at the first read and, in WAL, waits for no
    # writer and no other reader. BEGIN IMMEDIATE would make a search wait for a pipeline step's
    # write transaction to end (and for every other search's session).
    connection.exec_driver_sql("BEGIN")


def _sqlite_engine(url, on_connect, on_begin) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def new_engine(database_url: str) -> Engine:
    """An engine with foreign keys enforced on SQLite too, safe for several writing processes."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, _sqlite_pragmas, _sqlite_begin)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return create_engine(url, pool_pre_ping=True)


@cache
def shared_engine(database_url: str) -> Engine:
    """The process's one engine (and connection pool) for this URL."""
    return new_engine(database_url)


@cache
def shared_reader_engine(database_url: str) -> Engine:
    """The process's engine for reading sessions: on SQLite its transactions never take the
    write lock; on PostgreSQL it is the one engine."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return shared_engine(database_url)
    return _sqlite_engine(url, _sqlite_reader_pragmas, _sqlite_begin_reading)


class Catalog:
    """The catalog database: sessions, and the check that its schema is the code's."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.engine = shared_engine(database_url)

    def __repr__(self) -> str:
        return f"Catalog({redact_url(self.database_url)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = sessionmaker(self.engine, expire_on_commit=False)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads (searches, pages, token checks): one snapshot, and on
        SQLite no wait for writers or other readers; a write in it raises."""
        session = sessionmaker(shared_reader_engine(self.database_url), expire_on_commit=False)()
        try:
            yield session
        finally:
            session.close()  # rolls the read transaction back

    @property
    def embedded(self) -> bool:
        """A SQLite file: one machine, no deploy step."""
        return _sqlite_path(self.database_url) is not None

    def ready(self) -> None:
        """Make sure the schema is the code's: an embedded (SQLite) catalog is migrated by
        whoever opens it first (`heimdex index`, the sensors of `dagster dev`, `heimdex serve`),
        under the migration lock, since one machine has no deploy step; a server's catalog is
        only checked (CatalogNotReadyError: migrating it is `heimdex db upgrade`'s job)."""
        try:
            self.check_schema()
        except CatalogNotReadyError:
            if not self.embedded:
                raise
            upgrade(self.database_url)

    def check_schema(self) -> None:
        """Raise CatalogNotReadyError unless the database is at the code's head revision."""
        sqlite_file = _sqlite_path(self.database_url)
        if sqlite_file is not None and not sqlite_file.exists():
            raise CatalogNotReadyError(
                f"there is no catalog at {sqlite_file} yet: index videos first (`heimdex index "
                "PATH`), or run `heimdex db upgrade`"
            )
        found, wanted = current_revision(self.engine), head_revision()
        if found != wanted:
            state = "has no Heimdex tables" if found is None else f"is at revision {found}"
            raise CatalogNotReadyError(
                f"the catalog at {redact_url(self.database_url)} {state}; this code needs "
                f"{wanted}: run `heimdex db upgrade` (a deploy step; steps never migrate)"
            )
