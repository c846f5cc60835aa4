"""One source of truth for the schema: migrations at head match the models, on both databases."""

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, inspect

from heimdex_pipeline.catalog.database import new_engine, upgrade
from heimdex_pipeline.catalog.models import Base


def schema_drift(database_url: str, metadata: MetaData) -> list:
    """What Alembic's autogenerate would add to migrate the database to `metadata`."""
    engine = new_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def metadata_with_an_extra_column() -> MetaData:
    copy = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(copy)
    copy.tables["videos"].append_column(Column("bitrate", Integer, nullable=True))
    return copy


def test_sqlite_at_head_matches_the_models(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(url)
    assert schema_drift(url, Base.metadata) == []


@pytest.mark.slow
def test_postgres_at_head_matches_the_models(postgres_url: str):
    upgrade(postgres_url)
    assert schema_drift(postgres_url, Base.metadata) == []


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_a_column_added_without_a_migration_is_drift(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    drift = schema_drift(url, metadata_with_an_extra_column())
    assert [(d[0], d[3].name) for d in drift if d[0] == "add_column"] == [("add_column", "bitrate")]


@pytest.mark.slow
def test_heimdex_db_upgrade_creates_the_tables(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    result = subprocess.run(
        [sys.executable, "-m", "heimdex_pipeline.cli.main", "db", "upgrade"],
        env={"HEIMDEX_HOME": str(tmp_path), "HEIMDEX_DATABASE_URL": url, "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert {"videos", "scenes", "alembic_version"} <= set(
        inspect(new_engine(url)).get_table_names()
    )


def test_deleting_a_video_deletes_its_scenes(tmp_path: Path):
    from heimdex_pipeline.catalog.database import Catalog
    from heimdex_pipeline.catalog.models import Scene, Video

    url = f"sqlite:///{tmp_path / 'fk.sqlite'}"
    upgrade(url)
    catalog = Catalog(url)
    with catalog.session() as session:
        session.add(Video(id="v", owner="local", source_uri="file:///v.mp4", title="v.mp4"))
        session.flush()
        session.add(Scene(id="v-0", video_id="v", index=0, start_s=0, end_s=1))
    with catalog.session() as session:
        session.delete(session.get(Video, "v"))
    with catalog.session() as session:
        assert session.query(Scene).count() == 0


def test_a_reading_session_answers_while_a_writer_holds_the_catalog(tmp_path: Path):
    """Searches and pages read through `Catalog.reading()`: on SQLite they must not queue for
    the write lock a pipeline step holds (a session takes it up front, busy_timeout 30 s)."""
    import threading

    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError

    from heimdex_pipeline.catalog.database import Catalog
    from heimdex_pipeline.catalog.models import Video

    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(url)
    catalog = Catalog(url)
    counted: list[int] = []

    def count() -> None:
        with catalog.reading() as session:
            counted.append(session.scalar(select(func.count()).select_from(Video)))

    with catalog.session() as writer:
        writer.add(Video(id="v", owner="local", source_uri="file:///v.mp4", title="v.mp4"))
        writer.flush()  # the write lock is held until the session commits
        reader = threading.Thread(target=count)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "the read waited for the writer"
        assert counted == [0]  # its snapshot: before the writer's commit
    count()
    assert counted == [0, 1]
    with pytest.raises(OperationalError, match="readonly"), catalog.reading() as session:
        session.add(Video(id="w", owner="local", source_uri="file:///w.mp4", title="w.mp4"))
        session.flush()
