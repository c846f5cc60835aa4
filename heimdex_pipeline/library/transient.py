"""Which errors are worth retrying: an unreachable or overloaded store, a dropped database
connection, a LanceDB commit conflict. Bad input never is."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from heimdex_pipeline.media.errors import InvalidVideoError

if TYPE_CHECKING:
    from heimdex_pipeline.stores import Stores

_RETRYABLE_S3_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
}
_CONFLICT = re.compile(r"commit conflict|retryable|too many concurrent writers", re.IGNORECASE)
# LanceDB's Rust object store gives up on an unreachable S3 endpoint with a ValueError or OSError
# whose text carries the network error.
_RUST_NETWORK = re.compile(
    r"RetryError|ConnectionRefused|ConnectionReset|tcp connect error|error sending request"
    r"|connection closed before message completed|operation timed out|dns error",
    re.IGNORECASE,
)
_RUST_ERROR_NAMES = {"ValueError", "OSError", "RuntimeError", "IOError"}


def _one_is_transient(error: BaseException) -> bool:
    from minio.error import S3Error, ServerError
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(error, InvalidVideoError):
        return False
    if isinstance(error, (ConnectionError, TimeoutError, Urllib3Error, ServerError)):
        return True
    if isinstance(error, S3Error):
        return error.code in _RETRYABLE_S3_CODES
    if isinstance(error, (OperationalError, DisconnectionError, InterfaceError)):
        return True
    text = str(error)
    return bool(_CONFLICT.search(text) or _RUST_NETWORK.search(text)) and type(
        error
    ).__module__.startswith(("lance", "builtins"))


def is_transient(error: BaseException) -> bool:
    """True when the error, or one it was raised from, is a passing fault of a service."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, InvalidVideoError):
            return False
        if _one_is_transient(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def describe(error: BaseException) -> str:
    """One line a person understands: the error's type and message, and its root cause."""
    text = f"{type(error).__name__}: {error}".strip()
    root = error
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    if root is not error:
        text += f" (caused by {type(root).__name__}: {root})"
    return " ".join(text.split())[:600]


_ENDPOINT = re.compile(
    r"host='([^']+)', port=(\d+)"  # urllib3 (the object store)
    r'|connection to server at "([^"]+)", port (\d+)'  # psycopg2 (PostgreSQL)
    r"|uri: Some\(https?://([^/:)]+):(\d+)"  # LanceDB's object store (Rust)
)
_NO_MESSAGE = re.compile(r"^[\w.]+:\s*(\(\))?\s*$")  # e.g. "sqlalchemy.exc.InvalidatePoolError: ()"
_UNREACHABLE = re.compile(
    r"Connection refused|NewConnectionError|Max retries exceeded|timed out"
    r"|Name or service not known|ConnectionRefused|tcp connect error"
)


def describe_error_info(info) -> str:
    """One line from an error Dagster recorded (a `SerializableErrorInfo`, with its causes): a
    service that could not be reached is named with its address; else the first line of the
    error and of its root cause."""
    lines = []
    node = info
    while node is not None and len(lines) < 20:
        line = " ".join((node.message or "").strip().splitlines()[:1])
        if line and not _NO_MESSAGE.match(line):
            lines.append(line)
        node = node.cause or node.context
    text = " ".join(lines)
    endpoint = _ENDPOINT.search(text)
    unreachable = _UNREACHABLE.search(text)
    if endpoint and unreachable:
        reason = "connection refused" if "refused" in text else unreachable.group(0).lower()
        host = endpoint.group(1) or endpoint.group(3) or endpoint.group(5)
        port = endpoint.group(2) or endpoint.group(4) or endpoint.group(6)
        return f"the service at {host}:{port} is unreachable ({reason})"
    if not lines:
        return "failed"
    first, root = lines[0], lines[-1]
    return (first if root == first else f"{first} (caused by {root})")[:600]


# Class names of passing faults as Dagster records them (it keeps names, not classes).
_TRANSIENT_NAMES = {
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "TimeoutError",
    "OperationalError",  # SQLAlchemy's and psycopg2's: a dropped or refused connection
    "InterfaceError",
    "DisconnectionError",
    "InvalidatePoolError",
    "MaxRetryError",
    "NewConnectionError",
    "ProtocolError",
    "ReadTimeoutError",
    "ServerError",
}


def error_info_is_transient(info) -> bool:
    """`is_transient` for an error Dagster recorded (a `SerializableErrorInfo`): a passing fault
    of a service somewhere in its causes, and no bad input."""
    node, transient = info, False
    for _ in range(20):
        if node is None:
            break
        if node.cls_name == InvalidVideoError.__name__:
            return False
        text = node.message or ""
        rust = node.cls_name in _RUST_ERROR_NAMES and (
            _RUST_NETWORK.search(text) or _CONFLICT.search(text)
        )
        transient = transient or node.cls_name in _TRANSIENT_NAMES or bool(rust)
        node = node.cause or node.context
    return transient


def wait_for_stores(
    stores: Stores, timeout_s: float, say: Callable[[str], None], first_pause_s: float = 2.0
) -> bool:
    """Wait until the catalog, the object store and the vector store answer, pausing longer
    each time (up to 30 s), for at most `timeout_s`. Answers whether they all did; a fault
    that is not transient is raised at once."""
    probes = stores.probes()
    deadline, pause = time.monotonic() + timeout_s, first_pause_s
    while True:
        down = {}
        for name, probe in probes.items():
            try:
                probe()
            except Exception as error:
                if not is_transient(error):
                    raise
                down[name] = describe(error)
        if not down:
            return True
        if time.monotonic() + pause > deadline:
            say(f"still unreachable after {timeout_s:.0f} s, going on: {down}")
            return False
        say(f"waiting {pause:.0f} s for {', '.join(down)} to answer: {next(iter(down.values()))}")
        time.sleep(pause)
        pause = min(pause * 2, 30.0)
