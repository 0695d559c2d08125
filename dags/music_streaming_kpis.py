"""
### Music streaming KPIs

Raw `users`, `songs` and `streams` CSVs in the raw bucket become KPI tables in
the warehouse (Amazon Redshift; PostgreSQL locally). One run:

1. `create_tables`: brings the warehouse schema up to date (versioned migrations).
2. `extract_metadata` (only with `metadata_source = rds_postgres`): users and
   tracks from the operational PostgreSQL to CSVs in the raw bucket, one snapshot.
3. `find_new_files`: raw files whose key and content (ETag) are not in the ledger
   (`new`, passed on by `files_to_validate`), and those already processed (`skipped`).
4. `validate_and_transform` (mapped, one per new file): schema rules in pyarrow;
   Parquet to `validated/` and `transformed/`, bad rows to `quarantine/`.
5. `stage_batch`: the batch manifest and one COPY job per file to load that has rows.
6. `copy_to_staging` (mapped, one COPY per job): Parquet into staging.
7. `upsert_users`, then `upsert_songs` (MERGE), `load_streams` (deduplicated
   append, unknown users and tracks parked), `record_batch` (ledger): one
   transaction each, one after another.
8. `refresh_kpis`: `genre_kpis` and `hourly_kpis` for the dates this run touched
   (their Assets: a DAG scheduled on them, like `music_kpis_report`, runs next).
9. `recomputed_dates`, then the `check_*` tasks: common-sql's column and table checks
   on the KPI rows of those dates (skipped when none was recomputed).
10. `export_kpis` (mapped, one per KPI table, beside the checks): the KPI CSVs to the
    processed bucket's `exports/` (Redshift UNLOAD); `publish_report`: the KPI report
    to its `reports/`.
11. `report_rejected_files`: fails the run, naming each rejected file and why, after
    every good file is loaded (and exported and reported).

A failed run is announced on SNS when `[music_kpis] alerts_topic_arn` is set, and
every task has the execution timeout `[music_kpis] task_timeout_minutes`.

Settings: include/music_kpis/settings.py and README "Configuration".
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import chain, dag, task

from include.music_kpis import quality_checks, settings, tasks
from include.music_kpis.airflow_compat import AirflowFailException
from include.music_kpis.alerts import failure_alert, publish_rejected_files
from include.music_kpis.assets import KPI_ASSETS
from include.music_kpis.exports import UNLOAD_OPTIONS, export_jobs
from include.music_kpis.operators import KpiUnloadOperator, PostgresToS3CsvOperator, S3ParquetToPostgresOperator
from include.music_kpis.redshift_copy import COPY_OPTIONS, log_load_errors
from include.music_kpis.warehouse import SQL_DIR, dimension_params, sql_macros

BACKEND = settings.BACKEND.read()
METADATA_SOURCE = settings.METADATA_SOURCE.read()
ALERTS_TOPIC_ARN = settings.ALERTS_TOPIC_ARN.read()


def sql_step(task_id: str, sql: str, **kwargs: Any) -> SQLExecuteQueryOperator:
    """One SQL file, one transaction: its statements run on one connection, committed at the end."""
    return SQLExecuteQueryOperator(
        task_id=task_id,
        conn_id=settings.WAREHOUSE_CONN_ID,
        sql=sql,
        split_statements=True,
        **{"do_xcom_push": False, **kwargs},
    )


@dag(
    dag_id="music_streaming_kpis",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=settings.default_task_args(),
    on_failure_callback=failure_alert(ALERTS_TOPIC_ARN),
    tags=["music", "kpis", "s3", BACKEND, METADATA_SOURCE],
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros=sql_macros(BACKEND),
    doc_md=__doc__,
)
def music_streaming_kpis() -> None:
    # The tasks, in run order.
    @task
    def create_tables() -> None:
        tasks.create_tables(BACKEND)

    @task
    def extract_metadata() -> list[dict[str, Any]]:
        return tasks.extract_metadata()

    @task(multiple_outputs=True)
    def find_new_files() -> dict[str, list[dict[str, Any]]]:
        return tasks.find_new_files()

    @task
    def files_to_validate(new: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Airflow maps only over a task's whole return value, not over one of its outputs.
        return new

    # One XCom per file: a dict return would also be pushed key by key, and Airflow 3.0
    # (MWAA) refuses the None of a key (`reason` of a loaded file).
    @task(multiple_outputs=False)
    def validate_and_transform(raw_file: dict[str, Any]) -> dict[str, Any]:
        return tasks.validate_and_transform(raw_file)

    @task(trigger_rule="none_failed")
    def stage_batch(outcomes: list[dict[str, Any]], skipped: list[dict[str, Any]], run_id: Any = None) -> list[dict]:
        copy_conn_id = settings.REDSHIFT_COPY_CONN_ID if BACKEND == "redshift" else None
        return tasks.stage_batch(run_id, outcomes, skipped, copy_conn_id)

    if BACKEND == "redshift":
        copy_to_staging = S3ToRedshiftOperator.partial(
            task_id="copy_to_staging",
            redshift_conn_id=settings.WAREHOUSE_CONN_ID,
            aws_conn_id=settings.REDSHIFT_COPY_CONN_ID,
            s3_bucket=settings.PROCESSED_BUCKET.template,
            copy_options=COPY_OPTIONS,
            method="APPEND",
            on_failure_callback=log_load_errors,
        )
    else:
        copy_to_staging = S3ParquetToPostgresOperator.partial(
            task_id="copy_to_staging",
            postgres_conn_id=settings.WAREHOUSE_CONN_ID,
            aws_conn_id=settings.AWS_CONN_ID,
            s3_bucket=settings.PROCESSED_BUCKET.template,
        )

    upsert_users = sql_step("upsert_users", "upsert_dimension.sql", params=dimension_params("users"))
    upsert_songs = sql_step("upsert_songs", "upsert_dimension.sql", params=dimension_params("songs"))
    load_streams = sql_step("load_streams", "load_streams.sql")
    record_batch = sql_step("record_batch", "record_batch.sql")
    # Returns the dates it recomputed (the last statement of refresh_kpis.sql).
    refresh_kpis = sql_step("refresh_kpis", "refresh_kpis.sql", do_xcom_push=True, outlets=list(KPI_ASSETS))

    @task.short_circuit(task_id=quality_checks.RECOMPUTED_DATES_TASK_ID)
    def recomputed_dates(rows: list[list[Any]] | None) -> list[str]:
        # None recomputed: nothing to check, the checks are skipped.
        return quality_checks.recomputed_dates(rows)

    checks = quality_checks.quality_checks(settings.WAREHOUSE_CONN_ID, BACKEND)

    if BACKEND == "redshift":
        export_kpis = KpiUnloadOperator.partial(
            task_id="export_kpis",
            redshift_conn_id=settings.WAREHOUSE_CONN_ID,
            aws_conn_id=settings.REDSHIFT_COPY_CONN_ID,  # its role_arn: the role UNLOAD assumes
            s3_conn_id=settings.AWS_CONN_ID,
            s3_bucket=settings.PROCESSED_BUCKET.template,
            unload_options=UNLOAD_OPTIONS,
            table_as_file_name=False,
        ).expand_kwargs(export_jobs(BACKEND))
    else:
        export_kpis = PostgresToS3CsvOperator.partial(
            task_id="export_kpis",
            postgres_conn_id=settings.WAREHOUSE_CONN_ID,
            aws_conn_id=settings.AWS_CONN_ID,
            s3_bucket=settings.PROCESSED_BUCKET.template,
        ).expand_kwargs(export_jobs(BACKEND))

    @task
    def publish_report(run_id: Any = None) -> list[str]:
        return tasks.publish_report(run_id, BACKEND)

    @task
    def report_rejected_files(outcomes: list[dict[str, Any]], dag_run: Any = None) -> None:
        report = tasks.rejection_report(outcomes)
        if report:
            publish_rejected_files(ALERTS_TOPIC_ARN, dag_run.dag_id, report)
            raise AirflowFailException(report)

    # What flows between them.
    found = find_new_files()
    to_validate = files_to_validate(found["new"])
    outcomes = validate_and_transform.expand(raw_file=to_validate)
    copy_jobs = stage_batch(outcomes, found["skipped"])
    copies = copy_to_staging.expand_kwargs(copy_jobs)
    extracted = [extract_metadata()] if METADATA_SOURCE == "rds_postgres" else []

    # The order, once. The warehouse steps run one at a time: upsert_users and
    # upsert_songs both read and write the ledger, which Redshift's SERIALIZABLE
    # isolation aborts when two such transactions overlap (docs/redshift.md).
    # The checks only read, so they run side by side, and the rejected-files
    # report (no warehouse) does not wait for them.
    chain(refresh_kpis, recomputed_dates(refresh_kpis.output), checks)
    chain(
        create_tables(),
        *extracted,
        found,
        to_validate,
        outcomes,
        copy_jobs,
        copies,
        upsert_users,
        upsert_songs,
        load_streams,
        record_batch,
        refresh_kpis,
        export_kpis,
        publish_report(),
        report_rejected_files(outcomes),
    )


music_streaming_kpis()
