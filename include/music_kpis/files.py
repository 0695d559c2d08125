"""Raw files in S3: discovery, identity, and where their processed outputs go.

A raw file is identified by its key and its content (the S3 ETag), so a file
whose content changes under the same key is new data, and the same content is
never processed twice. Processed outputs live under a folder per file id, so a
COPY of one file's prefix can never match another file's objects.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from include.music_kpis.schemas import DATASETS, load_schema

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

# Raw objects read as CSV (any case); .csv.gz is gunzipped as it streams.
RAW_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz")


def ignored_reason(key: str) -> str | None:
    """Why an object under a raw prefix is not read, or None when it is."""
    if key.lower().endswith(RAW_SUFFIXES):
        return None
    if key.endswith("/"):
        return "a folder marker"
    return f"not a raw data file: only {' and '.join(RAW_SUFFIXES)} objects are read"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def file_id_for(raw_key: str, etag: str) -> str:
    """Stable id of one version of a raw file: hex only, safe in SQL and S3 keys."""
    return _digest(raw_key, etag)


def batch_id_for(run_id: str) -> str:
    """Stable id of a DAG run's batch: hex only, safe in SQL and S3 keys."""
    return _digest("batch", run_id)


@dataclass(frozen=True)
class RawFile:
    dataset: str
    raw_key: str
    etag: str

    @property
    def file_id(self) -> str:
        return file_id_for(self.raw_key, self.etag)

    def to_xcom(self) -> dict[str, str]:
        return asdict(self)


def transformed_prefix(dataset: str, file_id: str) -> str:
    return f"transformed/{dataset}/{file_id}/"


def validated_prefix(dataset: str, file_id: str) -> str:
    return f"validated/{dataset}/{file_id}/"


def quarantine_prefix(dataset: str, file_id: str) -> str:
    return f"quarantine/{dataset}/{file_id}/"


def manifest_prefix(batch_id: str) -> str:
    return f"transformed/files/{batch_id}/"


def list_raw_files(s3: S3Hook, bucket: str) -> list[RawFile]:
    """Every CSV object (.csv, .csv.gz) under the datasets' raw prefixes, in key order per dataset."""
    return [f for dataset in DATASETS for f in raw_files_under(s3, bucket, dataset, load_schema(dataset).raw_prefix)]


def raw_files_under(s3: S3Hook, bucket: str, dataset: str, prefix: str) -> list[RawFile]:
    """The CSV objects under one prefix of the raw bucket, in key order; every other
    object is named in the log as ignored, with the reason."""
    from include.music_kpis.airflow_compat import s3_object_metadata  # imports Airflow: only when listing

    files = []
    for obj in sorted(s3_object_metadata(s3, bucket, prefix), key=lambda o: o["Key"]):
        reason = ignored_reason(obj["Key"])
        if reason is None:
            files.append(RawFile(dataset, obj["Key"], obj["ETag"].strip('"')))
        elif not obj["Key"].endswith("/"):
            log.warning("s3://%s/%s ignored: %s", bucket, obj["Key"], reason)
    return files
