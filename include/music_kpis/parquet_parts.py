"""Parquet output of the transform: where parts go and how they are written.

Parts are sized for Redshift COPY (several per large file, so COPY spreads
them over its slices) and encoded on writer threads, so memory stays flat
whatever the size of the file.
"""

from __future__ import annotations

import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from include.music_kpis.task_memory import release_thread_memory

if TYPE_CHECKING:  # passed in: the transform runs (and is benchmarked) without importing Airflow
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


class ProcessedStore(Protocol):
    """Where processed outputs go: the processed bucket (or a folder, for benchmarks)."""

    def upload(self, local_path: Path, key: str) -> None: ...

    def copy(self, source_key: str, key: str) -> None: ...

    def remove_prefix(self, prefix: str) -> None: ...


@dataclass(frozen=True)
class S3ProcessedStore:
    bucket: str
    s3: S3Hook

    def upload(self, local_path: Path, key: str) -> None:
        # boto3's managed upload reads the file from disk part by part (multipart above
        # the hook's transfer threshold): memory stays flat whatever the size.
        self.s3.load_file(local_path, key, bucket_name=self.bucket, replace=True)

    def copy(self, source_key: str, key: str) -> None:
        # Within the bucket, by S3 itself: the worker does not send the bytes again.
        self.s3.copy_object(source_key, key, source_bucket_name=self.bucket, dest_bucket_name=self.bucket)

    def remove_prefix(self, prefix: str) -> None:
        keys = self.s3.list_keys(bucket_name=self.bucket, prefix=prefix)
        if keys:
            self.s3.delete_objects(self.bucket, keys)


def put_table(store: ProcessedStore, table: pa.Table, key: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.parquet"
        pq.write_table(table, path, compression="snappy")
        store.upload(path, key)


# Parquet dictionary encoding pays off for values that repeat (text, dates, small
# codes) and only costs time on wide ones that rarely do (ids, timestamps, row numbers).
_DICTIONARY_TYPES = (pa.string(), pa.date32(), pa.int16(), pa.bool_())
# Row groups a writer thread may have queued: bounds memory while it catches up.
_QUEUED_WRITES = 2


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if any(f.type.equals(t) for t in _DICTIONARY_TYPES)]


def _statistics_columns(schema: pa.Schema) -> list[str]:
    """Min/max statistics let a reader skip row groups by date, time or number. Text is
    left out: COPY reads every row group, the min and max of ids, reasons or raw
    records skip nothing, and computing them cost the writer about a tenth of its time."""
    return [f.name for f in schema if not pa.types.is_string(f.type)]


class PartWriter:
    """Parquet files of about `part_bytes` each under a prefix (several for a large
    input, so Redshift COPY spreads them over its slices), built in a local temp
    file, with row groups of about `group_rows` rows.

    Encoding and compression run on the writer's own thread (pyarrow releases
    the GIL), so validation goes on meanwhile; `write` only queues. A finished
    part is uploaded on another thread while the next is encoded, so only the
    last part's upload comes after the last row. Errors surface at the next
    `write` or at `close`.
    """

    def __init__(
        self,
        store: ProcessedStore,
        prefix: str,
        schema: pa.Schema,
        *,
        part_bytes: int,
        group_rows: int,
        stem: str = "part",
        keep_empty: bool = True,
        mirrors: tuple[str, ...] = (),
    ) -> None:
        self.store, self.prefix, self.schema, self.mirrors = store, prefix, schema, mirrors
        self.part_bytes, self.group_rows = part_bytes, group_rows
        self.stem, self.keep_empty = stem, keep_empty
        self.tmp = tempfile.TemporaryDirectory()
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0
        self.part = 0
        self.writer: pq.ParquetWriter | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-part")
        self.queued: deque[Future[None]] = deque()
        self.uploads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-upload")
        self.uploading: Future[None] | None = None
        self.finished = False  # closed or abandoned

    def _path(self) -> Path:
        return Path(self.tmp.name) / f"{self.stem}-{self.part:05d}.parquet"

    def write(self, table: pa.Table) -> None:
        while self.queued and (self.queued[0].done() or len(self.queued) >= _QUEUED_WRITES):
            self.queued.popleft().result()  # re-raises a failure of the writer thread
        self.queued.append(self.thread.submit(self._add, table))

    def _drain(self) -> None:
        while self.queued:
            self.queued.popleft().result()

    def _add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self._path(),
                self.schema,
                compression="snappy",
                use_dictionary=_dictionary_columns(self.schema),
                write_statistics=_statistics_columns(self.schema),
            )
        table = pa.concat_tables(self.pending) if self.pending else self.schema.empty_table()
        self.writer.write_table(table, row_group_size=max(self.pending_rows, 1))
        self.rows += self.pending_rows
        self.pending, self.pending_rows = [], 0
        # Hand freed blocks back to the OS: the allocator would otherwise keep ~40 MB
        # more resident at the peak, and the call is cheap next to a row group.
        release_thread_memory()
        if self._path().stat().st_size >= self.part_bytes:
            self._finish_part()

    def _finish_part(self) -> None:
        assert self.writer is not None
        self.writer.close()
        self.writer = None
        # One upload at a time: parts land in order, and at most two are on local disk.
        self._wait_for_upload()
        self.uploading = self.uploads.submit(self._upload, self._path())
        self.part += 1

    def _upload(self, path: Path) -> None:
        key = f"{self.prefix}{path.name}"
        self.store.upload(path, key)
        for prefix in self.mirrors:
            self.store.copy(key, f"{prefix}{path.name}")
        path.unlink(missing_ok=True)

    def _wait_for_upload(self) -> None:
        if self.uploading is not None:
            uploading, self.uploading = self.uploading, None
            uploading.result()  # re-raises a failed upload

    def _close(self) -> None:
        if self.pending_rows or (self.keep_empty and self.writer is None and self.part == 0):
            self._flush()  # an empty input still gets one (empty) part: COPY then loads nothing
        if self.writer is not None:
            self._finish_part()

    def close(self) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            self._drain()
            self.thread.submit(self._close).result()
            self._wait_for_upload()
        finally:
            self.thread.shutdown()
            self.uploads.shutdown(wait=True, cancel_futures=True)
            self.tmp.cleanup()

    def abandon(self) -> None:
        """Stop without uploading more; returns once nothing is being written."""
        self.finished = True
        self.thread.shutdown(wait=True, cancel_futures=True)
        self.uploads.shutdown(wait=True, cancel_futures=True)
        self.queued.clear()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.tmp.cleanup()
