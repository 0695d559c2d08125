"""Which errors are retried, how reasons quote input, and which raw objects are read."""

from __future__ import annotations

import gzip
import zlib

import psycopg2
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from include.music_kpis.files import ignored_reason
from include.music_kpis.reasons import describe_read_error, excerpt, safe_reason
from include.music_kpis.retry_policy import is_transient


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def _caused_by(cause: BaseException) -> Exception:
    try:
        raise pa.ArrowInvalid("read failed") from cause
    except pa.ArrowInvalid as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://s3"),
        ReadTimeoutError(endpoint_url="http://s3"),
        ConnectionResetError(),
        TimeoutError(),
        _client_error("SlowDown", 503),
        _client_error("InternalError", 500),
        _client_error("Throttling", 400),
        psycopg2.OperationalError("server closed the connection unexpectedly"),
        _caused_by(ConnectionResetError()),
    ],
)
def test_transient_errors_are_retried(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        pa.ArrowInvalid("CSV parse error"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        gzip.BadGzipFile("Not a gzipped file"),  # an OSError, but about the bytes
        EOFError("Compressed file ended before the end-of-stream marker was reached"),
        zlib.error("invalid distance"),
        ValueError("anything else"),
        _client_error("AccessDenied", 403),
        _client_error("NoSuchKey", 404),
        psycopg2.errors.CharacterNotInRepertoire("invalid byte sequence"),
    ],
)
def test_data_errors_are_not_retried(error: BaseException) -> None:
    assert not is_transient(error)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("plain", "plain"),
        ("a\x00b\tc\n", "a\\x00b\\x09c\\x0a"),
        (b"\x89PNG\r\n", "\\x89PNG\\x0d\\x0a"),  # bytes that are not UTF-8 stay escaped, never raw
        ("é😀\u200b", "é😀\\u200b"),
        ("x" * 50, "x" * 40 + "..."),
    ],
)
def test_excerpts_are_short_printable_and_escaped(value: str | bytes, shown: str) -> None:
    assert excerpt(value) == shown


@pytest.mark.parametrize("value", ["bad \x00" * 1000, "😀" * 2000, "\U0010fffe" * 900])
def test_a_reason_is_printable_and_fits_the_ledger(value: str) -> None:
    reason = safe_reason(value)
    assert reason.isprintable() and len(reason.encode("utf-8")) <= 2003  # the ledger's reason is VARCHAR(4096)


def test_a_parse_error_is_described_without_the_row_it_quotes() -> None:
    error = pa.ArrowInvalid("CSV parse error: Row #5: Expected 1 columns, got 3: \x00\x00\x00IDAT\x18\xff secret")
    assert describe_read_error(error) == (
        "row 4: row has 3 field(s), the header has 1, and is not UTF-8 text: the file is not a CSV in UTF-8"
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("streams/a.csv", None),
        ("streams/A.CSV", None),
        ("streams/2024/batch.csv.gz", None),
        ("streams/batch.CSV.GZ", None),
        ("streams/batch.gz", "not a raw data file: only .csv and .csv.gz objects are read"),
        ("streams/batch.csv.zip", "not a raw data file: only .csv and .csv.gz objects are read"),
        ("streams/notes.txt", "not a raw data file: only .csv and .csv.gz objects are read"),
        ("streams/2024/", "a folder marker"),
    ],
)
def test_which_raw_objects_are_read(key: str, reason: str | None) -> None:
    assert ignored_reason(key) == reason
