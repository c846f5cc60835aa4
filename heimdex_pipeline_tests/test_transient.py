"""Errors as a person reads them in the catalog: a service that cannot be reached is named by its
address; an empty wrapper in the chain never hides the real cause."""

import sys

from dagster._utils.error import serializable_error_info_from_exc_info
from sqlalchemy import create_engine
from sqlalchemy.exc import InvalidatePoolError

from heimdex_pipeline.transient import describe_error_info, is_transient
from heimdex_pipeline_tests.conftest import free_port


def _recorded(action):
    """The error `action` raises, as Dagster records it in a step failure."""
    try:
        action()
    except Exception as error:
        return error, serializable_error_info_from_exc_info(sys.exc_info())
    raise AssertionError("nothing was raised")


def test_an_unreachable_database_is_named_by_its_address_and_is_transient():
    port = free_port()
    engine = create_engine(f"postgresql+psycopg2://heimdex@127.0.0.1:{port}/heimdex")
    error, info = _recorded(lambda: engine.connect().close())
    assert is_transient(error)
    assert describe_error_info(info) == (
        f"the service at 127.0.0.1:{port} is unreachable (connection refused)"
    )


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
