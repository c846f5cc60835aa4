"""Which errors are worth retrying: an unreachable or overloaded store, a dropped database
connection, a LanceDB commit conflict. Bad input never is."""

from __future__ import annotations

import re

from heimdex_pipeline.media.errors import InvalidVideoError

_RETRYABLE_S3_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
}
_CONFLICT = re.compile(r"commit conflict|retryable|too many concurrent writers", re.IGNORECASE)


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
    return bool(_CONFLICT.search(str(error))) and type(error).__module__.startswith(
        ("lance", "builtins")
    )


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
)
_NO_MESSAGE = re.compile(r"^[\w.]+:\s*(\(\))?\s*$")  # e.g. "sqlalchemy.exc.InvalidatePoolError: ()"
_UNREACHABLE = re.compile(
    r"Connection refused|NewConnectionError|Max retries exceeded|timed out"
    r"|Name or service not known"
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
        host, port = endpoint.group(1) or endpoint.group(3), endpoint.group(2) or endpoint.group(4)
        return f"the service at {host}:{port} is unreachable ({reason})"
    if not lines:
        return "failed"
    first, root = lines[0], lines[-1]
    return (first if root == first else f"{first} (caused by {root})")[:600]
