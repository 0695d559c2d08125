"""The PostgreSQL stand-ins of the Amazon provider's Redshift transfers, one for each.

S3ParquetToPostgresOperator stands for S3ToRedshiftOperator: the same mapped
shape (``table``, ``s3_bucket``, ``s3_key`` prefix) and the same semantics as
Redshift ``COPY ... FORMAT AS PARQUET`` with ``APPEND``: every Parquet object
under the prefix is appended, columns matched by position and type
(binary_copy.py), all objects in one transaction. Each object is streamed
into a binary COPY one row group at a time: a thread encodes the next row
groups while PostgreSQL stores the rows already sent, and only a few row
groups are held at once.

KpiUnloadOperator is RedshiftToS3Operator with the UNLOAD options of
exports.py, leaving its one CSV at a stable key; PostgresToS3CsvOperator stands
for it: the rows of ``select_query`` as one CSV with a header, at that key.
"""

from __future__ import annotations

import io
import queue
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.transfers.redshift_to_s3 import RedshiftToS3Operator
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import BaseOperator

from include.music_kpis.binary_copy import binary_copy_stream, check_columns
from include.music_kpis.exports import UNLOADED_SUFFIX, write_kpi_csv


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
        table = _qualified(self.schema, self.table)
        statement = f"COPY {table} FROM STDIN WITH (FORMAT binary)"
        conn = PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()
        rows = 0
        try:
            with conn.cursor() as cursor:
                columns = _table_columns(cursor, table)
                for key in keys:
                    parquet = pq.ParquetFile(io.BytesIO(s3.get_key(key, self.s3_bucket).get()["Body"].read()))
                    check_columns(parquet.schema_arrow, columns, f"s3://{self.s3_bucket}/{key}", table)
                    _copy_from(cursor, statement, _ChunkStream(_ahead(binary_copy_stream(_row_groups(parquet)))))
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


class KpiUnloadOperator(RedshiftToS3Operator):
    """UNLOAD to ``s3_key`` (a prefix), then the one file it wrote moved to ``export_key``.

    UNLOAD ... PARALLEL OFF names its file <prefix>000 plus the EXTENSION ("Unloading
    data to Amazon S3"), so a stable key takes a move. ``aws_conn_id`` is the role
    UNLOAD assumes; ``s3_conn_id`` the worker's own access that moves the file.
    """

    template_fields: Sequence[str] = (*RedshiftToS3Operator.template_fields, "export_key")

    def __init__(self, *, export_key: str, s3_conn_id: str | None = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.export_key = export_key
        self.s3_conn_id = s3_conn_id

    def execute(self, context: Any) -> str:
        super().execute(context)
        unloaded = self.s3_key + UNLOADED_SUFFIX
        s3 = S3Hook(aws_conn_id=self.s3_conn_id)
        s3.copy_object(unloaded, self.export_key, source_bucket_name=self.s3_bucket, dest_bucket_name=self.s3_bucket)
        s3.delete_objects(self.s3_bucket, [unloaded])
        self.log.info("Wrote s3://%s/%s", self.s3_bucket, self.export_key)
        return self.export_key


class PostgresToS3CsvOperator(BaseOperator):
    template_fields: Sequence[str] = ("s3_bucket", "s3_key", "select_query", "postgres_conn_id", "aws_conn_id")
    ui_color = "#ededed"

    def __init__(
        self,
        *,
        s3_bucket: str,
        s3_key: str,
        select_query: str,
        postgres_conn_id: str = "postgres_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.select_query = select_query
        self.postgres_conn_id = postgres_conn_id
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> str:
        key = self.s3_key
        conn = PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()
        # Through a local file, uploaded from disk: memory stays flat whatever the number of rows.
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "export.csv"
            try:
                with conn.cursor() as cursor, path.open("w", encoding="utf-8", newline="") as handle:
                    cursor.execute(self.select_query)
                    write_kpi_csv(handle, [c[0] for c in cursor.description], iter(cursor.fetchone, None))
            finally:
                conn.close()
            S3Hook(aws_conn_id=self.aws_conn_id).load_file(str(path), key, bucket_name=self.s3_bucket, replace=True)
        self.log.info("Wrote s3://%s/%s", self.s3_bucket, key)
        return key


def _qualified(schema: str | None, table: str) -> str:
    names = [n for n in (schema, table) if n]
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    return ".".join(f'"{n}"' for n in names)


def _table_columns(cursor: Any, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of each column of ``table``, in its order."""
    cursor.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table,),
    )
    return [(name, sql_type) for name, sql_type in cursor.fetchall()]


def _row_groups(parquet: pq.ParquetFile) -> Iterator[pa.Table]:
    for group in range(parquet.num_row_groups):
        yield parquet.read_row_group(group)


# Chunks made ahead of COPY: enough to keep both sides busy.
_CHUNKS_AHEAD = 2


def _ahead(chunks: Iterator[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """The chunks of ``chunks``, made on a thread ahead of the consumer (pyarrow and numpy
    release the GIL while PostgreSQL stores the rows already sent)."""
    queued: queue.Queue[bytes | memoryview | BaseException | None] = queue.Queue(maxsize=_CHUNKS_AHEAD)
    stop = threading.Event()

    def offer(item: bytes | memoryview | BaseException | None) -> bool:
        """Queue an item unless the consumer has stopped; False once it has."""
        while not stop.is_set():
            try:
                queued.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(None)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    maker = threading.Thread(target=make, name="copy-chunks", daemon=True)
    maker.start()
    try:
        while (chunk := queued.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
    finally:
        stop.set()
        maker.join()


class _ChunkStream(io.RawIOBase):
    """A file object over byte chunks, as COPY FROM STDIN reads it."""

    def __init__(self, chunks: Iterator[bytes | memoryview]) -> None:
        super().__init__()
        self.chunks, self.offset = chunks, 0
        self.current: bytes | memoryview = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self.offset >= len(self.current):  # an empty chunk is not the end: None is
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.current, self.offset = chunk, 0
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
