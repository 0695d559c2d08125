"""What the DAG's Python tasks do; the DAG file only wires these together.

Data passes between tasks through S3 and the warehouse; XComs carry only
small descriptions of files (keys, ids, outcomes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awswrangler as wr
import boto3
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import Variable

from include.music_kpis.airflow_compat import AirflowFailException, BaseHook
from include.music_kpis.files import RawFile, batch_id_for, list_raw_files, raw_files_under, transformed_prefix
from include.music_kpis.metadata_source import SOURCE_CONN_ID, extract_tables
from include.music_kpis.processing import ACCEPTED, REJECTED, SKIPPED, FileOutcome, process_raw_file, write_manifest
from include.music_kpis.retry_policy import is_transient
from include.music_kpis.schemas import load_schema, load_source_tables
from include.music_kpis.warehouse import AWS_CONN_ID, SQL_DIR, WAREHOUSE_CONN_ID


@dataclass(frozen=True)
class RuntimeSettings:
    """Airflow variables the tasks read when they run (AIRFLOW_VAR_* overrides)."""

    raw_bucket: str
    processed_bucket: str
    reject_threshold: float
    read_block_bytes: int

    @classmethod
    def from_variables(cls) -> RuntimeSettings:
        return cls(
            raw_bucket=Variable.get("music_kpis_raw_bucket"),
            processed_bucket=Variable.get("music_kpis_processed_bucket"),
            reject_threshold=float(Variable.get("music_kpis_reject_threshold", default="0.05")),
            read_block_bytes=int(Variable.get("music_kpis_read_block_mb", default="4")) << 20,
        )


def wrangler_session(aws_conn_id: str = AWS_CONN_ID) -> boto3.Session:
    """boto3 session of an Airflow AWS connection, with its endpoint for awswrangler."""
    hook = S3Hook(aws_conn_id=aws_conn_id)
    endpoint = hook.conn_config.endpoint_url
    if endpoint:  # moto or MinIO locally; unset on AWS
        wr.config.s3_endpoint_url = endpoint
    return hook.get_session()


def find_new_files() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Raw files not in the ledger yet, and those already processed (to skip)."""
    settings = RuntimeSettings.from_variables()
    files = list_raw_files(S3Hook(aws_conn_id=AWS_CONN_ID), settings.raw_bucket)
    warehouse = BaseHook.get_hook(WAREHOUSE_CONN_ID)
    processed = {row[0] for row in warehouse.get_records((SQL_DIR / "select_ledger.sql").read_text())}
    new = [f for f in files if f.file_id not in processed]
    skipped = [f for f in files if f.file_id in processed]
    return [f.to_xcom() for f in new], [f.to_xcom() for f in skipped]


def extract_metadata() -> list[dict[str, Any]]:
    """Users and tracks from the operational database into the raw bucket (metadata_source = rds_postgres)."""
    settings = RuntimeSettings.from_variables()
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID)
    existing = [
        raw
        for table in load_source_tables()
        for raw in raw_files_under(s3, settings.raw_bucket, table.dataset, table.raw_prefix)
    ]
    warehouse = BaseHook.get_hook(WAREHOUSE_CONN_ID)
    rejected = {row[0] for row in warehouse.get_records((SQL_DIR / "select_rejected_files.sql").read_text())}

    def upload(path: Path, key: str) -> None:
        s3.load_file(str(path), key, bucket_name=settings.raw_bucket, replace=True)

    source = BaseHook.get_hook(SOURCE_CONN_ID).get_conn()
    try:
        extracted = extract_tables(source, upload, existing, rejected)
    finally:
        source.close()
    return [f.to_xcom() for f in extracted]


def validate_and_transform(raw_file: dict[str, Any]) -> dict[str, Any]:
    """One raw file's outcome. A bad file is an outcome (rejected), not an error;
    only a transient error is raised as is, for Airflow to retry. Anything else
    fails the task at once (AirflowFailException: no retry), since running the
    same code on the same input again would fail the same way."""
    settings = RuntimeSettings.from_variables()
    try:
        outcome = process_raw_file(
            RawFile(**raw_file),
            raw_bucket=settings.raw_bucket,
            processed_bucket=settings.processed_bucket,
            reject_threshold=settings.reject_threshold,
            session=wrangler_session(),
            block_bytes=settings.read_block_bytes,
        )
    except Exception as error:
        if is_transient(error):
            raise
        raise AirflowFailException(f"{raw_file.get('raw_key')}: {type(error).__name__}: {error}") from error
    return outcome.to_xcom()


def _all(items: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Every item of a mapped task's XCom; a slice fetches them in one request."""
    return list(items[:]) if items else []


def stage_batch(
    run_id: str, outcomes: Sequence[dict[str, Any]] | None, skipped: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Write the batch manifest; return one COPY job per accepted file, plus the manifest."""
    settings = RuntimeSettings.from_variables()
    batch = [FileOutcome(**o) for o in _all(outcomes)]
    batch += [FileOutcome(**f, file_id=RawFile(**f).file_id, outcome=SKIPPED) for f in skipped]
    manifest = write_manifest(batch_id_for(run_id), batch, settings.processed_bucket, wrangler_session())
    jobs = [
        {"table": load_schema(o.dataset).staging_table, "s3_key": transformed_prefix(o.dataset, o.file_id)}
        for o in batch
        if o.outcome == ACCEPTED
    ]
    return [*jobs, {"table": "stg_files", "s3_key": manifest}]


def rejection_report(outcomes: Sequence[dict[str, Any]] | None) -> str | None:
    """One line per rejected file with its reason, or None when none was rejected."""
    rejected = [o for o in _all(outcomes) if o["outcome"] == REJECTED]
    if not rejected:
        return None
    lines = [f"{o['raw_key']}: {o['reason']}" for o in rejected]
    return f"{len(rejected)} raw file(s) rejected; every other file was loaded:\n" + "\n".join(lines)
