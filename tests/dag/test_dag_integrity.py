"""The DAG file imports cleanly and has the promised shape, for both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
from airflow.providers.common.sql.operators.sql import (
    SQLColumnCheckOperator,
    SQLExecuteQueryOperator,
    SQLTableCheckOperator,
)

from include.music_kpis.airflow_compat import dag_bag
from include.music_kpis.assets import KPI_ASSETS
from include.music_kpis.kpis import kpi_tables
from include.music_kpis.operators import S3ParquetToPostgresOperator
from include.music_kpis.quality_checks import PARTITION_CLAUSE, log_checked_dates
from include.music_kpis.redshift_copy import log_load_errors
from include.music_kpis.settings import ALERTS_TOPIC_ARN, TASK_TIMEOUT_MINUTES
from include.music_kpis.warehouse import SQL_DIR
from tests.conftest import PROJECT_DIR
from tests.helpers.dag import CHECK_TASK_IDS, REPORT_DAG_ID, load_dag

DAG_ID = "music_streaming_kpis"
UPSTREAMS = {
    "create_tables": set(),
    "find_new_files": {"create_tables"},
    "files_to_validate": {"find_new_files"},
    "validate_and_transform": {"files_to_validate"},
    "stage_batch": {"find_new_files", "validate_and_transform"},
    "copy_to_staging": {"stage_batch"},
    "upsert_users": {"copy_to_staging"},
    "upsert_songs": {"upsert_users"},
    "load_streams": {"upsert_songs"},
    "record_batch": {"load_streams"},
    "refresh_kpis": {"record_batch"},
    "export_kpis": {"refresh_kpis"},
    "publish_report": {"export_kpis"},
    "report_rejected_files": {"publish_report", "validate_and_transform"},
    "recomputed_dates": {"refresh_kpis"},
    **{check: {"recomputed_dates"} for check in CHECK_TASK_IDS},
}


@pytest.fixture(params=["postgres", "redshift"])
def dag(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    return load_dag(monkeypatch, request.param)


def test_task_graph(dag) -> None:
    assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == UPSTREAMS
    # No cycles: a topological order visits every task.
    assert len(dag.topological_sort()) == len(UPSTREAMS)


@pytest.mark.parametrize("backend", ["postgres", "redshift"])
def test_rds_metadata_source_extracts_before_listing_raw_files(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv("AIRFLOW__MUSIC_KPIS__METADATA_SOURCE", "rds_postgres")
    dag = load_dag(monkeypatch, backend)
    expected = {**UPSTREAMS, "extract_metadata": {"create_tables"}, "find_new_files": {"extract_metadata"}}
    assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == expected
    assert "rds_postgres" in dag.tags


def test_dag_settings(dag) -> None:
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert {"music", "kpis"} <= set(dag.tags)
    assert dag.doc_md and "find_new_files" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "data-engineering"
        assert task.retries >= 1, task.task_id


@pytest.mark.parametrize("dag_id", [DAG_ID, REPORT_DAG_ID])
def test_every_task_has_the_configured_timeout(monkeypatch: pytest.MonkeyPatch, dag_id: str) -> None:
    default = load_dag(monkeypatch, "postgres", dag_id)
    assert default.tasks and {t.execution_timeout for t in default.tasks} == {timedelta(minutes=120)}
    monkeypatch.setenv(TASK_TIMEOUT_MINUTES.environment_variable, "7")
    configured = load_dag(monkeypatch, "postgres", dag_id)
    for task in configured.tasks:
        assert task.execution_timeout == timedelta(minutes=7), task.task_id


def test_failure_alert_only_with_a_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_dag(monkeypatch, "redshift").on_failure_callback  # unset: nothing is sent
    topic = "arn:aws:sns:eu-west-1:123456789012:music-kpis-alerts"
    monkeypatch.setenv(ALERTS_TOPIC_ARN.environment_variable, topic)
    callbacks = load_dag(monkeypatch, "redshift").on_failure_callback
    (notifier,) = callbacks if isinstance(callbacks, list) else [callbacks]
    assert isinstance(notifier, SnsNotifier)
    assert notifier.target_arn == topic and notifier.aws_conn_id == "aws_default"


def test_refresh_kpis_updates_the_kpi_assets(dag, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sorted(a.name for a in KPI_ASSETS) == sorted(kpi.name for kpi in kpi_tables())
    assert list(dag.get_task("refresh_kpis").outlets) == list(KPI_ASSETS)
    report = load_dag(monkeypatch, "postgres", REPORT_DAG_ID)
    assert list(report.timetable.asset_condition.objects) == list(KPI_ASSETS)  # every KPI table updated
    assert [t.task_id for t in report.tasks] == ["log_latest_kpi_counts"]


def test_checks_are_the_providers_and_see_only_the_recomputed_dates(dag) -> None:
    checks = [t for t in dag.tasks if t.task_id.startswith("check_")]
    assert {type(t) for t in checks} == {SQLColumnCheckOperator, SQLTableCheckOperator}
    for check in checks:
        assert check.partition_clause == PARTITION_CLAUSE
        assert check.on_failure_callback in (log_checked_dates, [log_checked_dates])
    assert dag.get_task("recomputed_dates").upstream_task_ids == {"refresh_kpis"}


def test_mapping(dag) -> None:
    mapped = {t.task_id for t in dag.tasks if t.is_mapped}
    assert mapped == {"validate_and_transform", "copy_to_staging", "export_kpis"}
    assert dag.get_task("stage_batch").trigger_rule == "none_failed"


def test_sql_steps_are_sql_files(dag) -> None:
    steps = {t.task_id: t for t in dag.tasks if isinstance(t, SQLExecuteQueryOperator)}
    assert set(steps) == {
        "upsert_users",
        "upsert_songs",
        "load_streams",
        "record_batch",
        "refresh_kpis",
    }
    sql_files = {path.read_text() for path in SQL_DIR.glob("*.sql")}
    for task in steps.values():
        assert task.sql in sql_files  # the parser resolved the .sql file into its text
        assert task.conn_id == "music_kpis_warehouse"
        assert task.split_statements is True and task.autocommit is False


def test_redshift_loads_with_s3_to_redshift(monkeypatch: pytest.MonkeyPatch) -> None:
    copy = load_dag(monkeypatch, "redshift").get_task("copy_to_staging")
    assert copy.operator_class is S3ToRedshiftOperator
    kwargs = copy.partial_kwargs
    assert kwargs["method"] == "APPEND"
    assert kwargs["copy_options"] == ["FORMAT AS PARQUET"]
    assert kwargs["redshift_conn_id"] == "music_kpis_warehouse"
    assert kwargs["aws_conn_id"] == "music_kpis_redshift_copy"
    assert kwargs["on_failure_callback"] in (log_load_errors, [log_load_errors])  # rejected lines to its log


def test_postgres_loads_with_project_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    copy = load_dag(monkeypatch, "postgres").get_task("copy_to_staging")
    assert copy.operator_class is S3ParquetToPostgresOperator


def test_unknown_backend_is_an_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUSIC_KPIS__BACKEND", "snowflake")
    bag = dag_bag(str(PROJECT_DIR / "dags"))
    assert len(bag.import_errors) == 2  # both DAG files read the backend
    for error in bag.import_errors.values():
        assert "[music_kpis] backend must be one of" in error


def test_kpi_exports_use_the_provider_unload_on_redshift_and_its_stand_in_locally(monkeypatch) -> None:
    """One export_kpis job a KPI table, ending at the same stable key on both backends."""
    from airflow.providers.amazon.aws.transfers.redshift_to_s3 import RedshiftToS3Operator

    from include.music_kpis.exports import UNLOAD_OPTIONS
    from include.music_kpis.operators import KpiUnloadOperator, PostgresToS3CsvOperator

    assert issubclass(KpiUnloadOperator, RedshiftToS3Operator)
    stable_keys = ["exports/genre_kpis.csv", "exports/hourly_kpis.csv"]
    redshift = load_dag(monkeypatch, "redshift").get_task("export_kpis")
    assert redshift.operator_class is KpiUnloadOperator
    assert [job["export_key"] for job in redshift.expand_input.value] == stable_keys
    postgres = load_dag(monkeypatch, "postgres").get_task("export_kpis")
    assert postgres.operator_class is PostgresToS3CsvOperator
    assert [job["s3_key"] for job in postgres.expand_input.value] == stable_keys
    assert postgres.partial_kwargs.get("unload_options") is None
    assert redshift.partial_kwargs["unload_options"] == UNLOAD_OPTIONS
    assert redshift.partial_kwargs["table_as_file_name"] is False
