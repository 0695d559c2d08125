"""Validate and transform one raw CSV file with awswrangler, chunk by chunk.

Good rows go to ``validated/`` (typed source columns) and ``transformed/``
(staging column order, what the warehouse COPYs); rejected rows go to
``quarantine/`` with their reason. A file whose rejected share is above the
threshold, or that cannot be parsed, is rejected whole: its validated and
transformed outputs are removed so it can never be half-loaded.
"""

from __future__ import annotations

import io
import logging
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

import awswrangler as wr
import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from include.music_kpis.csv_reader import EmptyFile, read_batches, read_header
from include.music_kpis.files import (
    RawFile,
    manifest_prefix,
    quarantine_prefix,
    transformed_prefix,
    validated_prefix,
)
from include.music_kpis.schemas import load_schema
from include.music_kpis.validation import (
    QUARANTINE_SCHEMA,
    FileRejected,
    plan_header,
    validate_chunk,
)

log = logging.getLogger(__name__)

ACCEPTED, REJECTED, SKIPPED = "accepted", "rejected", "skipped"
# Replaced in S3 while being read: neither loaded nor recorded, retried next run.
CHANGED = "changed"

# One row per file a batch saw; COPYed into stg_files (same column order).
MANIFEST_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("file_id", pa.string()),
        ("dataset", pa.string()),
        ("raw_key", pa.string()),
        ("etag", pa.string()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("rows_read", pa.int64()),
        ("rows_quarantined", pa.int64()),
    ]
)


@dataclass(frozen=True)
class FileOutcome:
    dataset: str
    raw_key: str
    etag: str
    file_id: str
    outcome: str
    reason: str | None = None
    rows_read: int = 0
    rows_quarantined: int = 0

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def _put_parquet(table: pa.Table, path: str, session: boto3.Session) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    buffer.seek(0)
    wr.s3.upload(local_file=buffer, path=path, boto3_session=session)


def _remove_prefix(bucket: str, prefix: str, session: boto3.Session) -> None:
    keys = wr.s3.list_objects(f"s3://{bucket}/{prefix}", boto3_session=session)
    if keys:
        wr.s3.delete_objects(keys, boto3_session=session)


def process_raw_file(
    raw: RawFile,
    *,
    raw_bucket: str,
    processed_bucket: str,
    reject_threshold: float,
    session: boto3.Session,
    block_bytes: int = 64 << 20,
) -> FileOutcome:
    """Validate + transform one raw file; returns what happened to it."""
    schema = load_schema(raw.dataset)
    file_id = raw.file_id

    s3 = session.client("s3", endpoint_url=wr.config.s3_endpoint_url)

    def open_stream() -> closing[BinaryIO]:
        # IfMatch: read exactly the version that was listed, or fail with 412.
        return closing(s3.get_object(Bucket=raw_bucket, Key=raw.raw_key, IfMatch=f'"{raw.etag}"')["Body"])

    rows_read = 0
    quarantined: list[pa.Table] = []
    try:
        plan = plan_header(read_header(open_stream), schema)
        if plan.dropped:
            log.warning("%s: dropped column(s) not in the %s schema: %s", raw.raw_key, raw.dataset, plan.dropped)
        for part, batch in enumerate(read_batches(open_stream, plan.header, block_bytes)):
            result = validate_chunk(
                batch.table,
                schema,
                plan,
                raw_key=raw.raw_key,
                file_id=file_id,
                source_rows=batch.source_rows,
                known_reasons=batch.decode_reasons,
                unparsed=batch.unparsed,
            )
            rows_read += result.rows_read
            name = f"part-{part:05d}.parquet"
            _put_parquet(
                result.good,
                f"s3://{processed_bucket}/{transformed_prefix(raw.dataset, file_id)}{name}",
                session,
            )
            _put_parquet(
                result.good.select(schema.column_names),
                f"s3://{processed_bucket}/{validated_prefix(raw.dataset, file_id)}{name}",
                session,
            )
            if result.rejected.num_rows:
                quarantined.append(result.rejected)
        reason = _threshold_breach(quarantined, rows_read, reject_threshold)
        if reason:
            raise FileRejected(reason)
    except (FileRejected, EmptyFile) as rejected:
        return _reject(raw, str(rejected), processed_bucket, session, quarantined, rows_read)
    except (UnicodeDecodeError, pa.ArrowInvalid) as error:
        return _reject(raw, _describe(error), processed_bucket, session, quarantined, rows_read)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise
        # Replaced while we read it: not ledgered, so the next run takes the new version.
        log.warning("%s changed while being read; it is left for the next run", raw.raw_key)
        _remove_prefix(processed_bucket, transformed_prefix(raw.dataset, file_id), session)
        return FileOutcome(raw.dataset, raw.raw_key, raw.etag, file_id, CHANGED)

    rows_quarantined = sum(t.num_rows for t in quarantined)
    if quarantined:
        rejected_rows = pa.concat_tables(quarantined)
        _put_parquet(
            rejected_rows,
            f"s3://{processed_bucket}/{quarantine_prefix(raw.dataset, file_id)}rows.parquet",
            session,
        )
        for row in rejected_rows.slice(0, 20).to_pylist():
            log.warning("%s row %s: %s", raw.raw_key, row["source_row"], row["reason"])
    return FileOutcome(raw.dataset, raw.raw_key, raw.etag, file_id, ACCEPTED, None, rows_read, rows_quarantined)


def _threshold_breach(quarantined: list[pa.Table], rows_read: int, threshold: float) -> str | None:
    rejected = sum(t.num_rows for t in quarantined)
    if rows_read == 0 or rejected / rows_read <= threshold:
        return None
    first = quarantined[0].slice(0, 1).to_pylist()[0]
    return (
        f"{rejected} of {rows_read} rows ({rejected / rows_read:.1%}) broke a rule, above the "
        f"{threshold:.0%} threshold; first: row {first['source_row']}: {first['reason']}"
    )


def _describe(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"header is not valid UTF-8 (byte {error.start})"
    return f"unreadable CSV: {str(error).strip()}"


def _reject(
    raw: RawFile,
    reason: str,
    processed_bucket: str,
    session: boto3.Session,
    quarantined: list[pa.Table],
    rows_read: int,
) -> FileOutcome:
    log.error("%s rejected: %s", raw.raw_key, reason)
    file_id = raw.file_id
    _remove_prefix(processed_bucket, transformed_prefix(raw.dataset, file_id), session)
    _remove_prefix(processed_bucket, validated_prefix(raw.dataset, file_id), session)
    quarantine = f"s3://{processed_bucket}/{quarantine_prefix(raw.dataset, file_id)}"
    record = pa.Table.from_pylist(
        [{"raw_key": raw.raw_key, "source_row": None, "reason": f"file rejected: {reason}", "record": None}],
        schema=QUARANTINE_SCHEMA,
    )
    _put_parquet(pa.concat_tables([record, *quarantined]), f"{quarantine}file.parquet", session)
    return FileOutcome(raw.dataset, raw.raw_key, raw.etag, file_id, REJECTED, reason, rows_read, 0)


def write_manifest(batch_id: str, outcomes: list[FileOutcome], processed_bucket: str, session: boto3.Session) -> str:
    """Write the batch's file list as Parquet for stg_files; returns its key prefix."""
    rows = [
        {
            "batch_id": batch_id,
            "file_id": o.file_id,
            "dataset": o.dataset,
            "raw_key": o.raw_key,
            "etag": o.etag,
            "outcome": o.outcome,
            "reason": o.reason,
            "rows_read": o.rows_read,
            "rows_quarantined": o.rows_quarantined,
        }
        for o in outcomes
    ]
    prefix = manifest_prefix(batch_id)
    _put_parquet(
        pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA),
        f"s3://{processed_bucket}/{prefix}files.parquet",
        session,
    )
    return prefix
