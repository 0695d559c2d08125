"""What the DAG's Python tasks do; the DAG file only wires these together.

Data passes between tasks through S3 and the warehouse; XComs carry only
small descriptions of files (keys, ids, outcomes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from include.music_kpis.airflow_compat import AirflowFailException, BaseHook
from include.music_kpis.files import RawFile, batch_id_for, list_raw_files, raw_files_under, transformed_prefix
from include.music_kpis.metadata_source import extract_tables
from include.music_kpis.migrations import migrate
from include.music_kpis.outcomes import LOADED, REJECTED, SKIPPED, FileOutcome, write_manifest
from include.music_kpis.redshift_copy import check_copy_connection
from include.music_kpis.retry_policy import is_transient
from include.music_kpis.schemas import all_schemas, load_schema, load_source_tables
from include.music_kpis.settings import AWS_CONN_ID, SOURCE_CONN_ID, WAREHOUSE_CONN_ID, RuntimeSettings
from include.music_kpis.task_memory import UPLOAD_THREADS
from include.music_kpis.transform import process_raw_file
from include.music_kpis.warehouse import SQL_DIR

log = logging.getLogger(__name__)

# The staging table of the batch manifest (one row per raw file the batch saw).
MANIFEST_TABLE = "stg_files"


def staging_tables() -> set[str]:
    """Every table copy_to_staging may COPY into."""
    return {schema.staging_table for schema in all_schemas()} | {MANIFEST_TABLE}


def s3_hook() -> S3Hook:
    """S3 through the Airflow AWS connection, for every task: the hook's client honours the
    connection's endpoint_url extra (moto locally; unset on AWS), and its managed uploads run
    on a pinned number of threads so a task's memory does not follow the machine."""
    return S3Hook(aws_conn_id=AWS_CONN_ID, transfer_config_args={"max_concurrency": UPLOAD_THREADS})


def create_tables(backend: str) -> None:
    """Bring the warehouse schema up to date (include/sql/migrations)."""
    conn = BaseHook.get_hook(WAREHOUSE_CONN_ID).get_conn()
    try:
        migrate(conn, backend)
    finally:
        conn.close()


def find_new_files() -> dict[str, list[dict[str, Any]]]:
    """Raw files not in the ledger yet ("new"), and those already processed ("skipped")."""
    runtime = RuntimeSettings.from_variables()
    files = list_raw_files(s3_hook(), runtime.raw_bucket)
    warehouse = BaseHook.get_hook(WAREHOUSE_CONN_ID)
    processed = {row[0] for row in warehouse.get_records((SQL_DIR / "select_ledger.sql").read_text())}
    new = [f for f in files if f.file_id not in processed]
    skipped = [f for f in files if f.file_id in processed]
    return {"new": [f.to_xcom() for f in new], "skipped": [f.to_xcom() for f in skipped]}


def extract_metadata() -> list[dict[str, Any]]:
    """Users and tracks from the operational database into the raw bucket (metadata_source = rds_postgres)."""
    runtime = RuntimeSettings.from_variables()
    s3 = s3_hook()
    existing = [
        raw
        for table in load_source_tables()
        for raw in raw_files_under(s3, runtime.raw_bucket, table.dataset, table.raw_prefix)
    ]
    warehouse = BaseHook.get_hook(WAREHOUSE_CONN_ID)
    rejected = {row[0] for row in warehouse.get_records((SQL_DIR / "select_rejected_files.sql").read_text())}

    def upload(path: Path, key: str) -> None:
        s3.load_file(str(path), key, bucket_name=runtime.raw_bucket, replace=True)

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
    runtime = RuntimeSettings.from_variables()
    try:
        outcome = process_raw_file(
            RawFile(**raw_file),
            raw_bucket=runtime.raw_bucket,
            processed_bucket=runtime.processed_bucket,
            reject_threshold=runtime.reject_threshold,
            s3=s3_hook(),
            block_bytes=runtime.read_block_bytes,
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
    run_id: str,
    outcomes: Sequence[dict[str, Any]] | None,
    skipped: list[dict[str, Any]],
    copy_conn_id: str | None = None,
) -> list[dict[str, str]]:
    """Write the batch manifest; return one COPY job per file to load that has rows, plus the manifest.

    copy_conn_id: the connection Redshift COPY uses (Redshift backend), checked before any COPY runs.
    A file to load without a good row (header only, or every row quarantined) gets no COPY job:
    its manifest row alone records it in the ledger.
    """
    if copy_conn_id:
        check_copy_connection(copy_conn_id)
    runtime = RuntimeSettings.from_variables()
    batch = [FileOutcome(**o) for o in _all(outcomes)]
    batch += [FileOutcome(**f, file_id=RawFile(**f).file_id, outcome=SKIPPED) for f in skipped]
    manifest = write_manifest(batch_id_for(run_id), batch, runtime.processed_bucket, s3_hook())
    jobs = [
        {"table": load_schema(o.dataset).staging_table, "s3_key": transformed_prefix(o.dataset, o.file_id)}
        for o in batch
        if o.outcome == LOADED and o.rows_read > o.rows_quarantined
    ]
    return [*jobs, {"table": MANIFEST_TABLE, "s3_key": manifest}]


def rejection_report(outcomes: Sequence[dict[str, Any]] | None) -> str | None:
    """One line per rejected file with its reason, or None when none was rejected."""
    rejected = [o for o in _all(outcomes) if o["outcome"] == REJECTED]
    if not rejected:
        return None
    lines = [f"{o['raw_key']}: {o['reason']}" for o in rejected]
    return f"{len(rejected)} raw file(s) rejected; every other file was loaded:\n" + "\n".join(lines)


def publish_report(run_id: str, backend: str) -> list[str]:
    """The KPI report of this run to the processed bucket: reports/runs/<run id>.html and reports/latest.html."""
    # Imported here: Plotly is heavy, and the DAG file that imports this module is parsed often.
    from include.music_kpis.kpi_report import publish_report as publish_kpi_report

    written = publish_kpi_report(run_id, backend)
    log.info("KPI report written to %s", ", ".join(written))
    return written
