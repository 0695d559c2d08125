"""Validate and transform one raw CSV file, block by block, in bounded memory.

The file is parsed in order on the calling thread, its blocks are validated on
a small pool (pyarrow compute releases the GIL) and handed on in file order.
How many threads and blocks, and in which allocator, is fixed in
`task_memory`, whatever the machine's core count. Good rows go to ``transformed/`` (staging column order, what the
warehouse COPYs) and the same Parquet parts, copied within the bucket, to
``validated/`` (see `_open_outputs`); rejected rows go to ``quarantine/`` with their reason. Both
are written in parts on writer threads as the file is read. A file whose
rejected share is above the threshold, or that cannot be parsed, is rejected
whole: its validated and transformed outputs are removed so it can never be
half-loaded.

Any error while reading or validating a file that is not transient (see
`retry_policy`) is a property of the file: the file is rejected with a reason
and the task succeeds, so the rest of the batch loads and no retry waits on
bytes that will not change. Transient errors are raised for Airflow to retry.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
from botocore.exceptions import ClientError

from include.music_kpis.csv_reader import (
    EmptyFile,
    RawBatch,
    ReadStoppedEarly,
    csv_stream,
    decode_batch,
    read_batches,
    read_header,
)
from include.music_kpis.files import (
    RawFile,
    quarantine_prefix,
    transformed_prefix,
    validated_prefix,
)
from include.music_kpis.outcomes import CHANGED, LOADED, REJECTED, FileOutcome
from include.music_kpis.parquet_parts import PartWriter, ProcessedStore, S3ProcessedStore, put_table
from include.music_kpis.reasons import describe_read_error, safe_reason
from include.music_kpis.retry_policy import is_transient
from include.music_kpis.schemas import DatasetSchema, schema_for_file
from include.music_kpis.task_memory import BLOCKS_IN_FLIGHT, VALIDATION_THREADS, bounded_memory, release_thread_memory
from include.music_kpis.validation import (
    QUARANTINE_SCHEMA,
    ChunkResult,
    FileRejected,
    HeaderPlan,
    plan_header,
    validate_chunk,
)

if TYPE_CHECKING:  # passed in: the transform itself runs, and is benchmarked, without Airflow
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

# A single CSV row must fit in one read block; blocks grow up to this for very long rows.
MAX_BLOCK_BYTES = 256 << 20

# Rejected rows named in the task log; all of them are in quarantine/.
_LOGGED_ROWS = 20


@dataclass
class _Outputs:
    """Where the rows of one raw file go while it is read."""

    transformed: PartWriter  # each part also copied to validated/
    quarantine: PartWriter
    rows_read: int = 0
    rows_quarantined: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # the first rejected rows, for the log

    @property
    def first_rejected(self) -> dict[str, Any] | None:
        return self.examples[0] if self.examples else None

    @property
    def writers(self) -> list[PartWriter]:
        return [self.transformed, self.quarantine]

    def add(self, result: ChunkResult) -> None:
        self.rows_read += result.rows_read
        self.transformed.write(result.good)
        if result.rejected.num_rows:
            if len(self.examples) < _LOGGED_ROWS:
                self.examples += result.rejected.slice(0, _LOGGED_ROWS - len(self.examples)).to_pylist()
            self.rows_quarantined += result.rejected.num_rows
            self.quarantine.write(result.rejected)


def _open_outputs(
    raw: RawFile, schema: DatasetSchema, store: ProcessedStore, *, part_bytes: int, group_rows: int
) -> _Outputs:
    """validated/ holds the very parts written to transformed/: the rows that passed
    every rule, typed, with their derived and lineage columns. Nothing reads it
    back (COPY takes transformed/); it is the record of exactly what was handed to
    the warehouse, and a second encoding of the same rows would cost as much CPU
    as writing transformed/ itself. Each part is uploaded once and copied by the
    store (S3 copies within the bucket: the worker does not send it twice)."""
    file_id = raw.file_id
    return _Outputs(
        transformed=PartWriter(
            store,
            transformed_prefix(raw.dataset, file_id),
            schema.staging_arrow_schema,
            part_bytes=part_bytes,
            group_rows=group_rows,
            mirrors=(validated_prefix(raw.dataset, file_id),),
        ),
        # Rejected rows are streamed out too, so memory does not grow with the file.
        quarantine=PartWriter(
            store,
            quarantine_prefix(raw.dataset, file_id),
            QUARANTINE_SCHEMA,
            part_bytes=part_bytes,
            group_rows=min(group_rows, 1 << 16),
            stem="rows",
            keep_empty=False,
        ),
    )


def _validate_blocks(
    raw: RawFile,
    open_stream: Callable[[], AbstractContextManager[BinaryIO]],
    schema: DatasetSchema,
    plan: HeaderPlan,
    outputs: _Outputs,
    block_bytes: int,
) -> None:
    """Read the file on this thread, validate blocks on a pool, hand results on in file order."""

    def validate(batch: RawBatch) -> ChunkResult:
        text = decode_batch(batch, plan.header)
        result = validate_chunk(
            text.table,
            schema,
            plan,
            raw_key=raw.raw_key,
            file_id=raw.file_id,
            source_rows=text.source_rows,
            known_reasons=text.decode_reasons,
            unparsed=text.unparsed,
        )
        del text
        release_thread_memory()
        return result

    pool = ThreadPoolExecutor(max_workers=VALIDATION_THREADS, thread_name_prefix="validate")
    in_flight: deque[Future[ChunkResult]] = deque()
    try:
        for batch in read_batches(open_stream, plan.header, block_bytes, decode=False):
            in_flight.append(pool.submit(validate, batch))
            del batch
            # The next block is read only once fewer than BLOCKS_IN_FLIGHT are held.
            while len(in_flight) >= BLOCKS_IN_FLIGHT or (in_flight and in_flight[0].done()):
                outputs.add(in_flight.popleft().result())
        while in_flight:
            outputs.add(in_flight.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def transform_file(
    raw: RawFile,
    open_stream: Callable[[], AbstractContextManager[BinaryIO]],
    store: ProcessedStore,
    *,
    reject_threshold: float,
    block_bytes: int = 4 << 20,
    part_bytes: int = 64 << 20,
    group_rows: int = 1 << 18,
) -> FileOutcome:
    """Validate + transform one raw file into `store`; returns what happened to it.

    `open_stream` opens the object as stored (gzip-compressed for a .gz key)."""
    with bounded_memory():
        return _transform(
            raw,
            csv_stream(open_stream, raw.raw_key),
            store,
            reject_threshold=reject_threshold,
            block_bytes=block_bytes,
            part_bytes=part_bytes,
            group_rows=group_rows,
        )


def _transform(
    raw: RawFile,
    open_stream: Callable[[], AbstractContextManager[BinaryIO]],
    store: ProcessedStore,
    *,
    reject_threshold: float,
    block_bytes: int,
    part_bytes: int,
    group_rows: int,
) -> FileOutcome:
    schema = schema_for_file(raw.dataset, raw.raw_key)
    file_id = raw.file_id
    outputs: _Outputs | None = None
    # Parts left by an earlier attempt (a retried task) must not mix with this one's.
    _discard(raw, store)
    try:
        plan = plan_header(read_header(open_stream), schema)
        if plan.dropped:
            log.warning("%s: dropped column(s) not in the %s schema: %s", raw.raw_key, raw.dataset, plan.dropped)
        outputs = _open_outputs(raw, schema, store, part_bytes=part_bytes, group_rows=group_rows)
        _validate_blocks(raw, open_stream, schema, plan, outputs, block_bytes)
        reason = _threshold_breach(outputs, reject_threshold)
        if reason:
            raise FileRejected(reason)
        for writer in outputs.writers:
            writer.close()
    except (FileRejected, EmptyFile) as rejected:
        return _reject(raw, str(rejected), store, outputs)
    except (UnicodeDecodeError, pa.ArrowInvalid, ReadStoppedEarly) as error:
        if _row_longer_than_block(error) and block_bytes < MAX_BLOCK_BYTES:
            # One CSV row is longer than a block: start again with larger blocks
            # (the new attempt clears what this one uploaded).
            _abandon(outputs)
            log.info("%s: a row is longer than %d bytes; reading again in larger blocks", raw.raw_key, block_bytes)
            return _transform(
                raw,
                open_stream,
                store,
                reject_threshold=reject_threshold,
                block_bytes=min(block_bytes * 16, MAX_BLOCK_BYTES),
                part_bytes=part_bytes,
                group_rows=group_rows,
            )
        return _reject(raw, _describe(error), store, outputs)
    except Exception as error:
        if is_transient(error) or _changed_while_read(error):
            _abandon(outputs)
            raise
        # Not a rule the code knows, but the same bytes would fail the same way again.
        log.exception("%s: unexpected error while reading it; the file is rejected", raw.raw_key)
        _abandon(outputs)
        return _reject(raw, f"could not be read as CSV: {describe_read_error(error)}", store, None, _rows(outputs))
    except BaseException:
        _abandon(outputs)
        raise

    for row in outputs.examples:
        log.warning("%s row %s: %s", raw.raw_key, row["source_row"], row["reason"])
    return FileOutcome(
        raw.dataset,
        raw.raw_key,
        raw.etag,
        file_id,
        LOADED,
        None,
        outputs.rows_read,
        outputs.rows_quarantined,
    )


def process_raw_file(
    raw: RawFile,
    *,
    raw_bucket: str,
    processed_bucket: str,
    reject_threshold: float,
    s3: S3Hook,
    block_bytes: int = 4 << 20,
) -> FileOutcome:
    """transform_file for a raw object in S3, read at exactly the listed version."""
    client = s3.get_conn()
    store = S3ProcessedStore(processed_bucket, s3)

    def open_stream() -> closing[BinaryIO]:
        # IfMatch: read exactly the version that was listed, or fail with 412.
        return closing(client.get_object(Bucket=raw_bucket, Key=raw.raw_key, IfMatch=f'"{raw.etag}"')["Body"])

    try:
        return transform_file(raw, open_stream, store, reject_threshold=reject_threshold, block_bytes=block_bytes)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise
        # Replaced while we read it: not ledgered, so the next run takes the new version.
        log.warning("%s changed while being read; it is left for the next run", raw.raw_key)
        _discard(raw, store)
        return FileOutcome(raw.dataset, raw.raw_key, raw.etag, raw.file_id, CHANGED)


def _threshold_breach(outputs: _Outputs, threshold: float) -> str | None:
    rejected, rows_read = outputs.rows_quarantined, outputs.rows_read
    if rows_read == 0 or rejected / rows_read <= threshold:
        return None
    first = outputs.first_rejected or {}
    return (
        f"{rejected} of {rows_read} rows ({rejected / rows_read:.1%}) broke a rule, above the "
        f"{threshold:.0%} threshold; first: row {first.get('source_row')}: {first.get('reason')}"
    )


def _row_longer_than_block(error: Exception) -> bool:
    """pyarrow's error for a row that does not fit in a block, or that error lost.

    Rows that do not parse go to the invalid-row handler and errors of the
    stream reach us as themselves (tests/unit/test_csv_reader.py), so the error
    pyarrow loses is a block's: a row longer than the block."""
    return isinstance(error, ReadStoppedEarly) or "straddling" in str(error)


def _describe(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"header is not valid UTF-8 (byte {error.start})"
    if _row_longer_than_block(error):
        return f"a row is longer than {MAX_BLOCK_BYTES >> 20} MB"
    return f"unreadable CSV: {describe_read_error(error)}"


def _changed_while_read(error: Exception) -> bool:
    """S3 refused the read: the object changed since it was listed (process_raw_file handles it)."""
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
        "PreconditionFailed",
        "412",
    )


def _rows(outputs: _Outputs | None) -> int:
    return outputs.rows_read if outputs is not None else 0


def _abandon(outputs: _Outputs | None) -> None:
    """Stop every writer; waits for an upload in progress, so nothing lands after it."""
    if outputs is not None:
        for writer in outputs.writers:
            writer.abandon()


def _discard(raw: RawFile, store: ProcessedStore) -> None:
    """Remove every part uploaded for this file (its writers must be stopped)."""
    for prefix in (transformed_prefix, validated_prefix, quarantine_prefix):
        store.remove_prefix(prefix(raw.dataset, raw.file_id))


def _reject(
    raw: RawFile, reason: str, store: ProcessedStore, outputs: _Outputs | None, rows_read: int = 0
) -> FileOutcome:
    """Never half-loaded: no transformed or validated part stays. The rows rejected one
    by one so far stay in quarantine (rows-*.parquet) next to the file's own reason."""
    reason = safe_reason(reason)
    log.error("%s rejected: %s", raw.raw_key, reason)
    if outputs is not None:
        rows_read = outputs.rows_read
        outputs.transformed.abandon()
        try:
            outputs.quarantine.close()
        except Exception as error:
            if is_transient(error):
                raise
            outputs.quarantine.abandon()  # the file's own reason below is what counts
    file_id = raw.file_id
    store.remove_prefix(transformed_prefix(raw.dataset, file_id))
    store.remove_prefix(validated_prefix(raw.dataset, file_id))
    record = pa.Table.from_pylist(
        [{"raw_key": raw.raw_key, "source_row": None, "reason": f"file rejected: {reason}", "record": None}],
        schema=QUARANTINE_SCHEMA,
    )
    put_table(store, record, f"{quarantine_prefix(raw.dataset, file_id)}file.parquet")
    return FileOutcome(raw.dataset, raw.raw_key, raw.etag, file_id, REJECTED, reason, rows_read, 0)
