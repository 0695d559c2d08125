"""Which errors are worth a retry.

A transient error (the network, throttling, a lost connection, a server that
is briefly unavailable) may go away if the task runs again: it is raised, and
Airflow retries the task. Every other error while reading or validating a raw
file is a property of the file's bytes, so a retry would fail the same way:
the file is rejected with a reason and the rest of the batch goes on.
"""

from __future__ import annotations

import socket

from botocore.exceptions import ClientError, ConnectionClosedError, ConnectionError, HTTPClientError, ReadTimeoutError

# S3 and AWS error codes that mean "try again later", not "this request is wrong".
TRANSIENT_AWS_CODES = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "500",
        "502",
        "503",
        "504",
    }
)

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # botocore: could not connect, endpoint unreachable
    HTTPClientError,  # botocore: the connection broke mid-request
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectionResetError,
    ConnectionAbortedError,
    ConnectionRefusedError,
    BrokenPipeError,
    TimeoutError,
    socket.timeout,
    MemoryError,  # the worker, not the file: another attempt may have room
)


def is_transient(error: BaseException) -> bool:
    """True when a retry may succeed; looks through the chain of causes
    (pyarrow re-raises a failed read of its Python stream as its own error)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_itself(error: BaseException) -> bool:
    if isinstance(error, _TRANSIENT_TYPES):
        return True
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return details.get("Code") in TRANSIENT_AWS_CODES or status >= 500
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - psycopg2 is a dependency
        return False
    # A lost or refused warehouse connection, not a rejected statement.
    return isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError))
