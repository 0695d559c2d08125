"""What a run quarantined, read back from the processed bucket: for the report and for OUT.

Rejected rows are in ``quarantine/<dataset>/<file_id>/rows-*.parquet``
(QUARANTINE_SCHEMA: raw_key, source_row, reason, record); a file rejected
whole also has ``file.parquet`` with its own reason (transform.py). Parts are
read one at a time, so memory follows the largest part, not the run.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from include.music_kpis.files import quarantine_prefix
from include.music_kpis.schemas import load_schema
from include.music_kpis.spreadsheet import safe_cell

# The quoted value at the end of a rule's reason ("user_id: not an integer (got 'abc')"):
# left out when reasons are counted, so that one rule is one line however many values broke it.
_QUOTED_VALUE = re.compile(r" \(got '.*'\)$", re.DOTALL)
QUARANTINE_CSV_COLUMNS = ["row", "reason", "record"]


@dataclass(frozen=True)
class BatchFile:
    """One raw file of a run, as etl_batch_files has it."""

    dataset: str
    raw_key: str
    file_id: str
    outcome: str
    reason: str | None
    rows_quarantined: int


def reason_kind(reason: str) -> str:
    """A row's reason without the value it quotes: the rule it broke."""
    return _QUOTED_VALUE.sub("", reason)


def quarantine_parts(s3: Any, bucket: str, file: BatchFile) -> Iterator[Any]:
    """The file's quarantine Parquet objects as pyarrow tables, in key order (s3: a boto3 S3 client)."""
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=quarantine_prefix(file.dataset, file.file_id))
        for item in page.get("Contents", [])
        if item["Key"].endswith(".parquet")
    ]
    for key in sorted(keys):
        yield pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def _counts_reasons(file: BatchFile) -> bool:
    """Rows of loaded files are counted by reason; a rejected file's own reason is in the ledger."""
    return file.outcome == "loaded" and file.rows_quarantined > 0


def _count_reasons(counts: Counter[tuple[str, str]], dataset: str, part: Any) -> None:
    for reason in part.column("reason").to_pylist():
        counts[dataset, reason_kind(reason)] += 1


def reason_counts(s3: Any, bucket: str, files: list[BatchFile]) -> Counter[tuple[str, str]]:
    """(dataset, reason kind) -> quarantined rows, over the loaded files of a run."""
    counts: Counter[tuple[str, str]] = Counter()
    for file in filter(_counts_reasons, files):
        for part in quarantine_parts(s3, bucket, file):
            _count_reasons(counts, file.dataset, part)
    return counts


def local_csv_path(out_dir: Path, file: BatchFile) -> Path:
    """OUT/quarantine/<dataset>/<file>.csv: the raw key below its dataset's prefix, as a .csv."""
    prefix = load_schema(file.dataset).raw_prefix
    prefix = prefix if file.raw_key.startswith(prefix) else ""
    name = re.sub(r"\.csv(\.gz)?$", "", file.raw_key[len(prefix) :], flags=re.IGNORECASE)
    return out_dir / "quarantine" / file.dataset / f"{name}.csv"


def write_local_csvs(s3: Any, bucket: str, files: list[BatchFile], out_dir: Path) -> Counter[tuple[str, str]]:
    """Each file's quarantined rows (row number, reason, raw record) as a CSV under OUT/quarantine/;
    returns reason_counts(files), counted from the same reads."""
    counts: Counter[tuple[str, str]] = Counter()
    for file in files:
        path = local_csv_path(out_dir, file)
        handle = None
        for part in quarantine_parts(s3, bucket, file):
            if handle is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = path.open("w", encoding="utf-8", newline="")
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(QUARANTINE_CSV_COLUMNS)
            for row in part.select(["source_row", "reason", "record"]).to_pylist():
                writer.writerow([row["source_row"], safe_cell(row["reason"]), safe_cell(row["record"])])
            if _counts_reasons(file):
                _count_reasons(counts, file.dataset, part)
        if handle is not None:
            handle.close()
    return counts
