"""Property: what validation accepts, the warehouse accepts.

Rows are drawn from the edges of what the warehouse types hold (control
characters, bytes that are not UTF-8, VARCHAR byte limits in multi-byte text,
integer ranges, timestamps at the ends of years 1..9999 with offsets that
cross them). Each row is either quarantined with a reason naming its column
and rule, or COPYed into the local warehouse by the DAG's own COPY operator
and read back, through the code the exports use, as exactly the validated value.
"""

from __future__ import annotations

import io
import math
import uuid
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.music_kpis.files import RawFile, quarantine_prefix, transformed_prefix
from include.music_kpis.migrations import migrate
from include.music_kpis.operators import S3ParquetToPostgresOperator
from include.music_kpis.outcomes import LOADED
from include.music_kpis.schemas import load_schema
from include.music_kpis.settings import AWS_CONN_ID, WAREHOUSE_CONN_ID
from include.music_kpis.tasks import s3_hook
from include.music_kpis.transform import process_raw_file
from localdev import outputs
from localdev.local_stack import s3_client

pytestmark = pytest.mark.integration

_TEXT_EDGES = [
    "\x00",
    "a\x00b",
    "\x01\x1f",
    "x\x7f",
    "tab\there",
    "line\nbreak",
    "  padded  ",
    "é" * 128,  # 256 bytes: the limit of a 256-byte column
    "é" * 129,
    "😀" * 64,
    "😀" * 65,
    "x" * 4096,
    "x" * 4097,
    "\u200b\ufeff",
    '"quoted", and, commas',
    "",
]
text_values = st.one_of(
    st.sampled_from(_TEXT_EDGES).map(str.encode),
    st.text(max_size=12).map(str.encode),  # any code point but surrogates: control characters included
    st.binary(max_size=6),  # bytes that may not be UTF-8
)
_INTEGER_EDGES = [2**15 - 1, 2**15, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**18 - 1, 10**18, 0, 1, 13, 100, 101, 120]
integer_values = st.one_of(
    st.sampled_from(_INTEGER_EDGES).flatmap(lambda n: st.sampled_from([str(n), f"-{n}", f"+{n}", f" {n} "])),
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from(["1.0", "1e3", "", "0x10", "\uff11\uff12"]),
).map(str.encode)
number_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e308", "1e309", "-1e308", "5e-324", "1e-400", "0.1", ".5", "5.", "-0", "nan", "inf", ""]),
).map(str.encode)
timestamp_values = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00-01:00",
            "0001-01-01 00:00:00",
            "0000-12-31 23:59:59",
            "2024-02-29 12:00:00",
            "2023-02-29 12:00:00",
            "2024-06-01T10:00:00.123456789Z",
        ]
    ),
    st.builds(
        lambda moment, offset: moment.isoformat() + offset,
        st.datetimes(),
        st.sampled_from(["", "Z", "+00:00", "-01:00", "+23:59", "-23:59"]),
    ),
).map(str.encode)
date_values = st.one_of(timestamp_values, st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}".encode()))
boolean_values = st.sampled_from(["true", "FALSE", "1", "0", "yes", ""]).map(str.encode)

VALUES = {
    "text": text_values,
    "bigint": integer_values,
    "integer": integer_values,
    "smallint": integer_values,
    "double": number_values,
    "timestamp": timestamp_values,
    "date": date_values,
    "boolean": boolean_values,
}
DATASETS = ("users", "songs", "streams")


def rows_of(dataset: str) -> st.SearchStrategy[list[list[bytes]]]:
    row = st.tuples(*(VALUES[c.type] for c in load_schema(dataset).columns)).map(list)
    return st.lists(row, min_size=1, max_size=20)


def csv_bytes(header: list[str], rows: list[list[bytes]]) -> bytes:
    """Every field quoted, so any bytes (newlines, quotes, commas) stay inside one field."""

    def field(value: bytes) -> bytes:
        return b'"' + value.replace(b'"', b'""') + b'"'

    lines = [",".join(header).encode()] + [b",".join(field(v) for v in row) for row in rows]
    return b"\n".join(lines) + b"\n"


@pytest.fixture
def ddl(stack) -> None:
    conn = stack.warehouse.connect()
    migrate(conn, "postgres")
    conn.close()


@pytest.mark.parametrize("dataset", DATASETS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_row_is_quarantined_or_stored_exactly(stack, ddl, dataset: str, data: st.DataObject) -> None:
    schema = load_schema(dataset)
    rows = data.draw(rows_of(dataset), label="rows")
    key = f"{schema.raw_prefix}{uuid.uuid4().hex}.csv"
    s3 = s3_client(stack.endpoint)
    s3.put_object(Bucket=stack.raw_bucket, Key=key, Body=csv_bytes(schema.column_names, rows))
    etag = s3.head_object(Bucket=stack.raw_bucket, Key=key)["ETag"].strip('"')
    outcome = process_raw_file(
        RawFile(dataset, key, etag),
        raw_bucket=stack.raw_bucket,
        processed_bucket=stack.processed_bucket,
        reject_threshold=1.0,  # never reject the whole file: every row is judged on its own
        s3=s3_hook(),  # the stack's AWS connection, as validate_and_transform gets it
    )
    assert outcome.outcome == LOADED, outcome.reason
    assert outcome.rows_read == len(rows)

    quarantined = _parquet_rows(stack, quarantine_prefix(dataset, outcome.file_id))
    for row in quarantined:
        column, _, rule = row["reason"].partition(": ")
        assert row["reason"].isprintable() and len(row["reason"]) < 200, row
        assert column in schema.column_names or column.startswith("row has"), row
        assert rule, row

    transformed = transformed_prefix(dataset, outcome.file_id)
    S3ParquetToPostgresOperator(
        task_id="copy_to_staging",
        table=schema.staging_table,
        s3_bucket=stack.processed_bucket,
        s3_key=transformed,
        postgres_conn_id=WAREHOUSE_CONN_ID,
        aws_conn_id=AWS_CONN_ID,
    ).execute({})
    validated = _parquet_rows(stack, transformed)
    columns = [f.name for f in schema.staging_arrow_schema]
    stored = outputs.query(
        stack.warehouse,
        f"SELECT {', '.join(columns)} FROM {schema.staging_table} WHERE file_id = %s ORDER BY source_row",
        (outcome.file_id,),
    )
    assert len(stored) == len(validated)
    for row, want in zip(stored, validated, strict=True):
        got = dict(zip(columns, row, strict=True))
        assert all(_same(got[c], want[c]) for c in columns), (got, want)

    loaded = {row["source_row"] for row in validated}
    rejected = {row["source_row"] for row in quarantined}
    assert loaded.isdisjoint(rejected)
    assert loaded | rejected == set(range(1, len(rows) + 1))


def _parquet_rows(stack, prefix: str) -> list[dict[str, Any]]:
    s3 = s3_client(stack.endpoint)
    rows: list[dict[str, Any]] = []
    for key in stack.processed_keys(prefix):
        body = s3.get_object(Bucket=stack.processed_bucket, Key=key)["Body"].read()
        rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return sorted(rows, key=lambda r: r["source_row"] or 0)


def _same(stored: Any, validated: Any) -> bool:
    if isinstance(validated, float) and isinstance(stored, float):
        return math.isclose(stored, validated, rel_tol=1e-15)  # DOUBLE PRECISION round trip through text
    return stored == validated
