"""What a batch does with each raw file it sees, and the batch manifest that records it.

The manifest is one Parquet file per batch, COPYed into stg_files like the
data; the load steps read it to know which files to load and record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from include.music_kpis.files import (
    manifest_prefix,
)
from include.music_kpis.parquet_parts import S3ProcessedStore, put_table
from include.music_kpis.reasons import safe_reason

if TYPE_CHECKING:  # passed in: see parquet_parts
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

# What a batch does with a raw file; the same words in the manifest, the ledger
# and the batch log. A file is "loaded" once it passed validation: the load
# steps take it in the same run, or the run fails and nothing is recorded.
LOADED, REJECTED, SKIPPED = "loaded", "rejected", "skipped"
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


def write_manifest(batch_id: str, outcomes: list[FileOutcome], processed_bucket: str, s3: S3Hook) -> str:
    """Write the batch's file list as Parquet for stg_files; returns its key prefix."""
    rows = [
        {
            "batch_id": batch_id,
            "file_id": o.file_id,
            "dataset": o.dataset,
            "raw_key": o.raw_key,
            "etag": o.etag,
            "outcome": o.outcome,
            "reason": safe_reason(o.reason) if o.reason is not None else None,
            "rows_read": o.rows_read,
            "rows_quarantined": o.rows_quarantined,
        }
        for o in outcomes
    ]
    prefix = manifest_prefix(batch_id)
    store = S3ProcessedStore(processed_bucket, s3)
    put_table(store, pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), f"{prefix}files.parquet")
    return prefix
