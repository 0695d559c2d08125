"""The local COPY path streams a Parquet object as CSV, one row group at a time
(include/music_kpis/operators.py): the same text as converting it whole."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from include.music_kpis.operators import _csv_row_groups, _CsvStream


def _parquet(table: pa.Table, row_group_size: int) -> pq.ParquetFile:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size)
    return pq.ParquetFile(io.BytesIO(buffer.getvalue()))


def _whole_csv(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("rows", [0, 1, 1000])
def test_row_groups_stream_as_the_whole_table_would(rows: int) -> None:
    table = pa.table({"user_id": pa.array(range(rows), pa.int64()), "track_id": [f"t,{i}\n" for i in range(rows)]})
    parquet = _parquet(table, row_group_size=300)
    assert parquet.num_row_groups == max(1, (rows + 299) // 300)  # an empty table still has one
    stream = _CsvStream(_csv_row_groups(parquet))
    read = b"".join(iter(lambda: stream.read(777), b""))
    assert read == _whole_csv(table)  # one header, then every row in order


def test_a_failed_conversion_reaches_the_reader() -> None:
    parquet = _parquet(pa.table({"a": [1, 2, 3]}), row_group_size=1)
    parquet.read_row_group = lambda group: (_ for _ in ()).throw(OSError("disk gone"))  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk gone"):
        _CsvStream(_csv_row_groups(parquet)).read()
