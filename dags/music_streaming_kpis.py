"""
### Music streaming KPIs

Raw `users`, `songs` and `streams` CSVs in the raw bucket become KPI tables in
the warehouse (Amazon Redshift; PostgreSQL locally):

0. `create_tables`: brings the warehouse schema up to date (versioned migrations).
   `extract_metadata` (only with `metadata_source = rds_postgres`): users and
   tracks from the operational PostgreSQL to CSVs in the raw bucket, one snapshot.
1. `find_new_files`: raw files whose key and content (ETag) are not in the ledger.
2. `validate_and_transform` (mapped, one per file): schema rules in
   pyarrow; Parquet to `validated/` and `transformed/`, bad rows to `quarantine/`.
3. `stage_batch` + `copy_to_staging` (mapped, one COPY per file): Parquet into staging.
4. `upsert_users`, then `upsert_songs` (MERGE), `load_streams` (deduplicated append,
   unknown users/tracks parked), `record_batch` (ledger): one transaction each.
5. `refresh_kpis`: `genre_kpis` and `hourly_kpis` for the dates this run touched.
6. `report_rejected_files`: fails the run, naming each rejected file and why,
   after every good file is loaded.

Settings: see README "Configuration".
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import dag, task

from include.music_kpis import pipeline
from include.music_kpis.airflow_compat import AirflowFailException
from include.music_kpis.metadata_source import configured_metadata_source
from include.music_kpis.operators import S3ParquetToPostgresOperator
from include.music_kpis.redshift_copy import COPY_OPTIONS
from include.music_kpis.warehouse import (
    AWS_CONN_ID,
    REDSHIFT_COPY_CONN_ID,
    SQL_DIR,
    WAREHOUSE_CONN_ID,
    configured_backend,
    dimension_params,
    sql_macros,
)

BACKEND = configured_backend()
METADATA_SOURCE = configured_metadata_source()
PROCESSED_BUCKET = "{{ var.value.music_kpis_processed_bucket }}"


@dag(
    dag_id="music_streaming_kpis",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Retry delay: Airflow's [core] default_task_retry_delay (300 s unless configured).
    default_args={"owner": "data-engineering", "retries": 2},
    tags=["music", "kpis", "s3", BACKEND, METADATA_SOURCE],
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros=sql_macros(BACKEND),
    doc_md=__doc__,
)
def music_streaming_kpis() -> None:
    @task
    def create_tables() -> None:
        pipeline.create_tables(BACKEND)

    @task
    def find_new_files(ti: Any = None) -> list[dict[str, Any]]:
        new, already_processed = pipeline.find_new_files()
        ti.xcom_push(key="skipped", value=already_processed)
        return new

    @task
    def extract_metadata() -> list[dict[str, Any]]:
        return pipeline.extract_metadata()

    @task
    def validate_and_transform(raw_file: dict[str, Any]) -> dict[str, Any]:
        return pipeline.validate_and_transform(raw_file)

    @task(trigger_rule="none_failed")
    def stage_batch(outcomes: list[dict[str, Any]], skipped: list[dict[str, Any]], run_id: Any = None) -> list[dict]:
        return pipeline.stage_batch(run_id, outcomes, skipped, REDSHIFT_COPY_CONN_ID if BACKEND == "redshift" else None)

    @task
    def report_rejected_files(outcomes: list[dict[str, Any]]) -> None:
        report = pipeline.rejection_report(outcomes)
        if report:
            raise AirflowFailException(report)

    found = find_new_files()
    outcomes = validate_and_transform.expand(raw_file=found)
    copy_jobs = stage_batch(outcomes, found["skipped"])

    if BACKEND == "redshift":
        copy_to_staging = S3ToRedshiftOperator.partial(
            task_id="copy_to_staging",
            redshift_conn_id=WAREHOUSE_CONN_ID,
            aws_conn_id=REDSHIFT_COPY_CONN_ID,
            s3_bucket=PROCESSED_BUCKET,
            copy_options=COPY_OPTIONS,
            method="APPEND",
        ).expand_kwargs(copy_jobs)
    else:
        copy_to_staging = S3ParquetToPostgresOperator.partial(
            task_id="copy_to_staging",
            postgres_conn_id=WAREHOUSE_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            s3_bucket=PROCESSED_BUCKET,
        ).expand_kwargs(copy_jobs)

    def sql_step(name: str, sql: str, **kwargs: Any) -> SQLExecuteQueryOperator:
        # One file, one transaction: statements run on one connection, committed at the end.
        return SQLExecuteQueryOperator(
            task_id=name, conn_id=WAREHOUSE_CONN_ID, sql=sql, split_statements=True, do_xcom_push=False, **kwargs
        )

    upsert_users = sql_step("upsert_users", "upsert_dimension.sql", params=dimension_params("users"))
    upsert_songs = sql_step("upsert_songs", "upsert_dimension.sql", params=dimension_params("songs"))
    load_streams = sql_step("load_streams", "load_streams.sql")
    record_batch = sql_step("record_batch", "record_batch.sql")
    refresh_kpis = sql_step("refresh_kpis", "refresh_kpis.sql")

    schema_ready = create_tables()
    if METADATA_SOURCE == "rds_postgres":
        schema_ready >> extract_metadata() >> found
    else:
        schema_ready >> found
    # One warehouse transaction at a time: upsert_users and upsert_songs both read and
    # write the ledger, which Redshift's SERIALIZABLE isolation aborts when they overlap.
    copy_to_staging >> upsert_users >> upsert_songs >> load_streams >> record_batch >> refresh_kpis
    refresh_kpis >> report_rejected_files(outcomes)


music_streaming_kpis()
