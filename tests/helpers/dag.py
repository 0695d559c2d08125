"""The DAG and its SQL as the tests see them: loaded by Airflow, rendered by the DAG's own Jinja environment."""

from __future__ import annotations

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import (
    SQLColumnCheckOperator,
    SQLExecuteQueryOperator,
    SQLTableCheckOperator,
)

from include.music_kpis.airflow_compat import dag_bag
from include.music_kpis.kpis import kpi_tables
from include.music_kpis.migrations import (
    SCHEMA_SQL,
    VERSION_TABLE_SQL,
    all_migrations,
    rebuild_statements,
    rendered_statements,
)
from tests.conftest import PROJECT_DIR

DAG_ID = "music_streaming_kpis"
REPORT_DAG_ID = "music_kpis_report"  # scheduled on the KPI Assets
# The checks after loading, as the DAG must name them (include/music_kpis/quality_checks.py).
CHECK_TASK_IDS = (
    "check_genre_kpis_values",
    "check_genre_kpis_rows",
    "check_hourly_kpis_values",
    "check_hourly_kpis_rows",
    "check_plays_reconcile",
    "check_streams_keys_unique",
)


def load_dag(monkeypatch: pytest.MonkeyPatch, backend: str, dag_id: str = DAG_ID):
    monkeypatch.setenv("AIRFLOW__MUSIC_KPIS__BACKEND", backend)
    bag = dag_bag(str(PROJECT_DIR / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {DAG_ID, REPORT_DAG_ID}
    return bag.dags[dag_id]


RUN_ID = "scheduled__2026-11-22T00:00:00+00:00"
# The dates refresh_kpis recomputed, as the checks' template context pulls them.
RECOMPUTED_DATES = ["2026-11-21", "2026-11-22"]
SQL_OPERATORS = (SQLExecuteQueryOperator, SQLColumnCheckOperator, SQLTableCheckOperator)


class RecomputedDatesTaskInstance:
    """`ti` of the template context: its XComs are the recomputed dates."""

    def xcom_pull(self, task_ids: str, **_: object) -> list[str]:
        return RECOMPUTED_DATES


def rendered_steps(monkeypatch: pytest.MonkeyPatch, backend: str) -> dict[str, list[str]]:
    """task_id -> statements, rendered through the DAG's own Jinja environment.

    create_tables runs schema.sql on a new warehouse and the migrations on an
    older one: both are rendered ("create_tables" and "create_tables:migrations").
    The tasks of the report DAG are keyed '<dag_id>.<task_id>'.
    """
    report = sql_task_statements(load_dag(monkeypatch, backend, REPORT_DAG_ID))
    return {
        "create_tables": new_warehouse_statements(backend),
        "create_tables:migrations": all_migration_statements(backend),
        **sql_task_statements(load_dag(monkeypatch, backend)),
        **{f"{REPORT_DAG_ID}.{task_id}": statements for task_id, statements in report.items()},
    }


def sql_task_statements(dag) -> dict[str, list[str]]:
    """task_id -> statements of each SQL task of `dag` (SQL steps and checks), rendered by its own Jinja environment."""
    env = dag.get_template_env()
    context = {"run_id": RUN_ID, "ti": RecomputedDatesTaskInstance()}
    return {
        task.task_id: DbApiHook.split_sql_string(env.from_string(task.sql).render(**context, params=task.params.dump()))
        for task in dag.tasks
        if isinstance(task, SQL_OPERATORS)
    }


def new_warehouse_statements(backend: str) -> list[str]:
    """What create_tables runs on an empty warehouse: schema.sql, then the KPI tables."""
    tables = [s for name in (VERSION_TABLE_SQL, SCHEMA_SQL) for s in rendered_statements(name, backend)]
    return tables + [s for kpi in kpi_tables() for s in rebuild_statements(kpi, backend)]


def all_migration_statements(backend: str) -> list[str]:
    """Every migration in order, as a warehouse made before versions were recorded runs them."""
    return [s for m in all_migrations() for s in rendered_statements(m.template, backend)]
