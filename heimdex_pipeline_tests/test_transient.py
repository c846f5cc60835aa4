"""Errors as a person reads them in the catalog: a service that cannot be reached is named by its
address; an empty wrapper in the chain never hides the real cause."""

import sys

import pytest
from dagster._utils.error import serializable_error_info_from_exc_info
from sqlalchemy import create_engine
from sqlalchemy.exc import InvalidatePoolError

from heimdex_pipeline.library.transient import (
    describe_error_info,
    error_info_is_transient,
    is_transient,
)
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.pipeline.runs import contiguous_batches
from heimdex_pipeline_tests.conftest import free_port


def _recorded(action):
    """The error `action` raises, as Dagster records it in a step failure."""
    try:
        action()
    except Exception as error:
        return error, serializable_error_info_from_exc_info(sys.exc_info())
    raise AssertionError("nothing was raised")


@pytest.mark.slow  # a PostgreSQL client
def test_an_unreachable_database_is_named_by_its_address_and_is_transient():
    port = free_port()
    engine = create_engine(f"postgresql+psycopg2://heimdex@127.0.0.1:{port}/heimdex")
    error, info = _recorded(lambda: engine.connect().close())
    assert is_transient(error)
    assert describe_error_info(info) == (
        f"the service at 127.0.0.1:{port} is unreachable (connection refused)"
    )
    assert error_info_is_transient(info)  # as recorded by Dagster: the failed-runs sensor's view


def test_bad_input_or_a_plain_bug_recorded_by_dagster_is_not_transient():
    def bad_input_while_the_database_was_down() -> None:
        try:
            raise ConnectionRefusedError("the catalog is down")
        except ConnectionRefusedError as outage:
            raise InvalidVideoError("clip.mp4", "not a readable video container") from outage

    _, info = _recorded(bad_input_while_the_database_was_down)
    assert not error_info_is_transient(info)
    _, info = _recorded(lambda: {}["missing"])
    assert not error_info_is_transient(info)


def test_an_empty_exception_in_the_chain_is_not_taken_for_the_root_cause():
    def fail() -> None:
        try:
            try:
                raise InvalidatePoolError()
            except InvalidatePoolError:
                raise ValueError("the catalog row was locked")  # noqa: B904
        except ValueError as root:
            raise RuntimeError("the step failed") from root

    _, info = _recorded(fail)
    text = describe_error_info(info)
    assert "InvalidatePoolError" not in text
    assert text.startswith("RuntimeError: the step failed")
    assert text.endswith("(caused by ValueError: the catalog row was locked)")


def test_a_rerun_covers_ranges_of_neighbouring_partitions_only():
    partitions = ["a", "b", "c", "d", "e", "f"]
    assert contiguous_batches(partitions, ["e", "a", "b", "d"]) == [["a", "b"], ["d", "e"]]
    assert contiguous_batches(partitions, ["f", "zzz"]) == [["f"]]  # a deleted partition drops
    assert contiguous_batches(partitions, []) == []


@pytest.mark.slow  # LanceDB's object store retries for a few seconds before it gives up
def test_lancedb_on_an_unreachable_s3_endpoint_is_transient_and_named_by_its_address():
    """LanceDB reports an S3 endpoint it cannot reach as a plain ValueError with the Rust error
    in its text: it is still an outage (retried, and re-run by the failed-runs sensor)."""
    from heimdex_pipeline.settings import S3Settings
    from heimdex_pipeline.stores.vectors import VectorStore

    port = free_port()
    s3 = S3Settings(endpoint=f"127.0.0.1:{port}", access_key="k", secret_key="s", secure=False)
    store = VectorStore("s3://nowhere/lancedb", s3)
    error, info = _recorded(store.table_names)
    assert isinstance(error, ValueError)
    assert is_transient(error) and error_info_is_transient(info)
    assert describe_error_info(info) == (
        f"the service at 127.0.0.1:{port} is unreachable (connection refused)"
    )
