"""The local COPY from Parquet writes PostgreSQL's binary COPY format (include/music_kpis/binary_copy.py):
every schema type, NULLs and the limits validation lets through arrive as the values they were, and a
Parquet file whose columns are not the table's (by position and type) is refused, as Redshift's COPY from
Parquet refuses it (AWS "COPY from columnar data formats")."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.music_kpis.binary_copy import ARROW_TYPE_OF_SQL_TYPE, binary_copy_stream, check_columns
from include.music_kpis.operators import _ahead, _ChunkStream, _copy_from, _row_groups, _table_columns
from include.music_kpis.schemas import ARROW_TYPES, EARLIEST_TIMESTAMP, INTEGER_RANGES, LATEST_TIMESTAMP, SQL_TYPES

# One column per schema type, each with its extremes, a NULL and an ordinary value.
VALUES: dict[str, list] = {
    "bigint": [*INTEGER_RANGES["bigint"], None, 0],
    "integer": [*INTEGER_RANGES["integer"], None, 7],
    "smallint": [*INTEGER_RANGES["smallint"], None, 23],
    "double": [-1.7976931348623157e308, 5e-324, None, 0.1],
    "boolean": [True, False, None, True],
    "text": ["", "Ünïcödé ♫ 音楽", None, 'a "quoted", value\nover two lines'],
    "date": [EARLIEST_TIMESTAMP.date(), LATEST_TIMESTAMP.date(), None, dt.date(1999, 12, 31)],
    "timestamp": [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, None, dt.datetime(2000, 1, 1, 0, 0, 0, 1)],
}


@pytest.fixture
def cursor(warehouse):
    conn = warehouse.connect()
    columns = ", ".join(f"c_{name} {SQL_TYPES[name]}" for name in VALUES)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE every_type ({columns})")
        yield cur
    conn.rollback()
    conn.close()


def _parquet(table: pa.Table, row_group_size: int) -> pq.ParquetFile:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size)
    return pq.ParquetFile(io.BytesIO(buffer.getvalue()))


def _copy(cursor, parquet: pq.ParquetFile, table: str = "every_type") -> None:
    check_columns(parquet.schema_arrow, _table_columns(cursor, table), "s3://processed/part.parquet", table)
    stream = _ChunkStream(_ahead(binary_copy_stream(_row_groups(parquet))))
    _copy_from(cursor, f"COPY {table} FROM STDIN WITH (FORMAT binary)", stream)


def test_every_schema_type_has_an_encoding() -> None:
    assert set(ARROW_TYPE_OF_SQL_TYPE) == set(SQL_TYPES.values())
    assert set(ARROW_TYPE_OF_SQL_TYPE.values()) == set(ARROW_TYPES.values())


@pytest.mark.parametrize("row_group_size", [1, 3, 1000])
def test_every_value_arrives_as_it_was(cursor, row_group_size: int) -> None:
    table = pa.table({f"c_{name}": pa.array(values, ARROW_TYPES[name]) for name, values in VALUES.items()})
    _copy(cursor, _parquet(table, row_group_size))
    cursor.execute(f"SELECT {', '.join(f'c_{name}' for name in VALUES)} FROM every_type")
    stored = sorted(cursor.fetchall(), key=repr)
    assert stored == sorted(zip(*VALUES.values(), strict=True), key=repr)


def test_an_empty_file_copies_no_row(cursor) -> None:
    table = pa.table({f"c_{name}": pa.array([], ARROW_TYPES[name]) for name in VALUES})
    _copy(cursor, _parquet(table, 10))
    cursor.execute("SELECT COUNT(*) FROM every_type")
    assert cursor.fetchone() == (0,)


def test_a_column_of_another_type_is_refused_by_name(cursor) -> None:
    types = {name: ARROW_TYPES[name] for name in VALUES} | {"integer": pa.int64()}  # a bigint for an integer
    table = pa.table({f"c_{name}": pa.array([None], arrow) for name, arrow in types.items()})
    refused = r"part\.parquet: Parquet column 2 \(c_integer\) is int64.*every_type\.c_integer"
    with pytest.raises(ValueError, match=refused):
        _copy(cursor, _parquet(table, 10))


def test_a_missing_column_is_refused(cursor) -> None:
    table = pa.table({f"c_{name}": pa.array([None], ARROW_TYPES[name]) for name in list(VALUES)[:-1]})
    with pytest.raises(ValueError, match="7 Parquet columns for the 8 columns of every_type"):
        _copy(cursor, _parquet(table, 10))
