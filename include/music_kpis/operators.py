"""S3ParquetToPostgresOperator: the local stand-in for S3ToRedshiftOperator.

It has the same mapped shape (``table``, ``s3_bucket``, ``s3_key`` prefix) and
the same semantics as Redshift ``COPY ... FORMAT AS PARQUET`` with ``APPEND``:
every Parquet object under the prefix is appended, columns matched by
position, all objects in one transaction.

Each object is streamed into COPY one row group at a time: a thread turns the
next row groups into CSV while PostgreSQL parses the text already sent, and
only a few row groups are held at once, whatever the size of the object.
"""

from __future__ import annotations

import io
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import BaseOperator


class S3ParquetToPostgresOperator(BaseOperator):
    template_fields: Sequence[str] = ("table", "schema", "s3_bucket", "s3_key", "postgres_conn_id", "aws_conn_id")
    ui_color = "#99e699"

    def __init__(
        self,
        *,
        table: str,
        s3_bucket: str,
        s3_key: str,
        schema: str | None = None,
        postgres_conn_id: str = "postgres_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.schema = schema
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.postgres_conn_id = postgres_conn_id
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> int:
        s3 = S3Hook(aws_conn_id=self.aws_conn_id)
        keys = sorted(k for k in s3.list_keys(self.s3_bucket, prefix=self.s3_key) if k.endswith(".parquet"))
        statement = f"COPY {_qualified(self.schema, self.table)} FROM STDIN WITH (FORMAT csv, HEADER true)"
        conn = PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()
        rows = 0
        try:
            with conn.cursor() as cursor:
                for key in keys:
                    parquet = pq.ParquetFile(io.BytesIO(s3.get_key(key, self.s3_bucket).get()["Body"].read()))
                    _copy_from(cursor, statement, _CsvStream(_csv_row_groups(parquet)))
                    rows += parquet.metadata.num_rows
            conn.commit()
        finally:
            conn.close()
        self.log.info(
            "Appended %d rows from %d Parquet object(s) under s3://%s/%s into %s",
            rows,
            len(keys),
            self.s3_bucket,
            self.s3_key,
            self.table,
        )
        return rows


def _qualified(schema: str | None, table: str) -> str:
    names = [n for n in (schema, table) if n]
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    return ".".join(f'"{n}"' for n in names)


# Row groups converted ahead of COPY: enough to keep both sides busy.
_ROW_GROUPS_AHEAD = 2


def _csv_row_groups(parquet: pq.ParquetFile) -> Iterator[bytes]:
    """The CSV text of a Parquet file, header first, one row group at a time, converted on a
    thread ahead of the consumer (pyarrow releases the GIL while PostgreSQL parses)."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_ROW_GROUPS_AHEAD)
    stop = threading.Event()

    def offer(item: bytes | BaseException | None) -> bool:
        """Queue an item unless the consumer has stopped; False once it has."""
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def convert() -> None:
        try:
            for group in range(max(parquet.num_row_groups, 1)):
                table = parquet.read_row_group(group) if parquet.num_row_groups else parquet.schema_arrow.empty_table()
                buffer = io.BytesIO()
                pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=group == 0))
                if not offer(buffer.getvalue()):
                    return
            offer(None)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    converter = threading.Thread(target=convert, name="parquet-to-csv", daemon=True)
    converter.start()
    try:
        while (chunk := chunks.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
    finally:
        stop.set()
        converter.join()


class _CsvStream(io.RawIOBase):
    """A file object over byte chunks, as COPY FROM STDIN reads it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self.chunks, self.current, self.offset = chunks, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self.offset >= len(self.current):
            self.current, self.offset = next(self.chunks, b""), 0
            if not self.current:
                return 0
        size = min(len(buffer), len(self.current) - self.offset)
        buffer[:size] = self.current[self.offset : self.offset + size]
        self.offset += size
        return size


def _copy_from(cursor: Any, statement: str, data: io.RawIOBase) -> None:
    """COPY FROM STDIN on either driver the Postgres provider may hand out."""
    if hasattr(cursor, "copy_expert"):  # psycopg2
        cursor.copy_expert(statement, data, size=1 << 20)
    else:  # psycopg 3
        with cursor.copy(statement) as copy:
            while block := data.read(1 << 20):
                copy.write(block)
