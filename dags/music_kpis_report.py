"""
### Music KPIs report

Runs when a run of `music_streaming_kpis` has refreshed both KPI tables (its
`refresh_kpis` task updates the Assets `genre_kpis` and `hourly_kpis`), and logs
how many rows each KPI table holds for its latest date. An example of a DAG
scheduled on fresh KPIs, and the place for a report on them.

Settings: include/music_kpis/settings.py and README "Configuration".
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import dag

from include.music_kpis import settings
from include.music_kpis.assets import KPI_ASSETS
from include.music_kpis.warehouse import SQL_DIR, sql_macros

BACKEND = settings.BACKEND.read()


@dag(
    dag_id="music_kpis_report",
    schedule=list(KPI_ASSETS),  # when every KPI table has been updated since the last run
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=settings.default_task_args(),
    tags=["music", "kpis", "report", BACKEND],
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros=sql_macros(BACKEND),
    doc_md=__doc__,
)
def music_kpis_report() -> None:
    SQLExecuteQueryOperator(
        task_id="log_latest_kpi_counts",
        conn_id=settings.WAREHOUSE_CONN_ID,
        sql="latest_kpi_counts.sql",
        show_return_value_in_logs=True,
    )


music_kpis_report()
