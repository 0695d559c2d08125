"""Checks after loading: the KPI rows of the dates this run recomputed, checked in the warehouse.

common-sql's own check operators, each limited by its ``partition_clause`` to the dates
``refresh_kpis`` recomputed (refresh_kpis.sql returns them; ``recomputed_dates`` passes them on
and skips the checks when there are none), so their cost follows the batch, not the history:

- ``check_<kpi table>_values`` (SQLColumnCheckOperator): no NULL key, counts above 0, the
  diversity index in (0, 1], hours in 0..23;
- ``check_<kpi table>_rows`` (SQLTableCheckOperator): unique listeners and tracks at most the plays;
- ``check_plays_reconcile``: for each date, the plays in every KPI table equal the rows in streams;
- ``check_streams_keys_unique``: no two rows of the fact table share its key. Redshift does not
  enforce primary keys, so there the rows are counted per key; PostgreSQL enforces the fact
  table's primary key, so there the check is that this key is in place (no count of 5M keys to
  prove what the database already guarantees).

A failed check fails its task, which names the check; its log names the dates it checked.
"""

from __future__ import annotations

import copy
import logging
from datetime import date
from typing import Any

from airflow.providers.common.sql.operators.sql import (
    BaseSQLOperator,
    SQLColumnCheckOperator,
    SQLTableCheckOperator,
)

from include.music_kpis.kpis import KpiTable, kpi_tables
from include.music_kpis.warehouse import FACT_TABLE, fact_key

log = logging.getLogger(__name__)

RECOMPUTED_DATES_TASK_ID = "recomputed_dates"
# The checks' WHERE clause: the dates recomputed_dates returned, as literals (ISO dates, checked there).
PARTITION_CLAUSE = (
    "listen_date IN ({% for day in ti.xcom_pull(task_ids='" + RECOMPUTED_DATES_TASK_ID + "') %}"
    "'{{ day }}'{{ ', ' if not loop.last }}{% endfor %})"
)
_POSITIVE = {"min": {"greater_than": 0}}
# Value ranges of KPI columns (SQLColumnCheckOperator); every key column is also checked for NULLs.
VALUE_RANGES: dict[str, dict[str, dict[str, Any]]] = {
    "genre_kpis": {"total_plays": _POSITIVE, "unique_listeners": _POSITIVE},
    "hourly_kpis": {
        "listen_hour": {"min": {"geq_to": 0}, "max": {"leq_to": 23}},
        "total_plays": _POSITIVE,
        "unique_listeners": _POSITIVE,
        "unique_tracks": _POSITIVE,
        "track_diversity_index": {"min": {"greater_than": 0}, "max": {"leq_to": 1}},
    },
}
# Rules between the columns of a KPI row (SQLTableCheckOperator): name -> condition every row meets.
ROW_RULES: dict[str, dict[str, str]] = {
    "genre_kpis": {"listeners_within_plays": "unique_listeners <= total_plays"},
    "hourly_kpis": {
        "listeners_within_plays": "unique_listeners <= total_plays",
        "tracks_within_plays": "unique_tracks <= total_plays",
    },
}
PLAYS_COLUMN = "total_plays"  # a KPI table with it is reconciled with the fact table


def reconciled_tables() -> list[str]:
    """The KPI tables that count plays: per date, their plays add up to the fact table's rows."""
    return [kpi.name for kpi in kpi_tables() if PLAYS_COLUMN in kpi.column_names]


def recomputed_dates(rows: list[list[Any]] | None) -> list[str]:
    """refresh_kpis' result (one row per recomputed date) as ISO dates; parsed, as they become SQL literals."""
    return [date.fromisoformat(str(row[0])).isoformat() for row in rows or []]


def log_checked_dates(context: Any) -> None:
    """on_failure_callback of a check: its log names the check and the dates it checked."""
    ti = context["ti"]
    dates = ti.xcom_pull(task_ids=RECOMPUTED_DATES_TASK_ID) or []
    log.error("Check %s failed on the dates this run recomputed: %s", ti.task_id, ", ".join(dates))


def column_mapping(kpi: KpiTable) -> dict[str, dict[str, Any]]:
    """SQLColumnCheckOperator's checks of a KPI table: its value ranges, and no NULL in a key column."""
    mapping = copy.deepcopy(VALUE_RANGES.get(kpi.name, {}))  # the operator writes results into it
    for column in kpi.key:
        mapping.setdefault(column, {})["null_check"] = {"equal_to": 0}
    return mapping


def plays_per_date() -> str:
    """A derived table: per date, the rows of the fact table and the plays each KPI table counts.

    One UNION ALL grouped by date, so the checks' WHERE on listen_date reaches every table's scan;
    each table is counted per date in its own branch, so millions of plays are never unioned row by row.
    """
    kpis = reconciled_tables()
    columns = {"stream_rows": FACT_TABLE, **{f"{kpi}_plays": kpi for kpi in kpis}}  # column -> its table

    def branch(source: str, value: str) -> str:
        picks = ", ".join(f"{value if table == source else 0} AS {column}" for column, table in columns.items())
        return f"SELECT listen_date, {picks} FROM {source} GROUP BY listen_date"

    branches = " UNION ALL ".join(
        [branch(FACT_TABLE, "COUNT(*)"), *(branch(kpi, f"SUM({PLAYS_COLUMN})") for kpi in kpis)]
    )
    sums = ", ".join(f"SUM({column}) AS {column}" for column in columns)
    return f"(SELECT listen_date, {sums} FROM ({branches}) AS plays GROUP BY listen_date) AS plays_per_date"


def reconciliation_checks() -> dict[str, dict[str, str]]:
    rule = " AND ".join(f"{kpi}_plays = stream_rows" for kpi in reconciled_tables())
    return {"plays_match_streams": {"check_statement": rule}}


def fact_keys(backend: str) -> str:
    """A derived table: per date of the fact table, ``copies`` is 1 when no two of its rows share a key."""
    key = ", ".join(fact_key())
    if backend == "redshift":  # primary keys are informational: count the rows of each key
        return f"(SELECT listen_date, COUNT(*) AS copies FROM {FACT_TABLE} GROUP BY {key}) AS fact_keys"
    # PostgreSQL refuses a second row with the key of its primary key: the key must be that one.
    enforced = (
        f"SELECT 1 FROM pg_constraint WHERE conrelid = '{FACT_TABLE}'::regclass AND contype = 'p' "
        f"AND convalidated AND pg_get_constraintdef(oid) = 'PRIMARY KEY ({key})'"
    )
    # One row per date of the fact table, found date after date through the key's leading column
    # (PostgreSQL's "loose index scan"): a probe of the index per date instead of reading every
    # play (a first load of 5M plays: 0.5 s) for a verdict that does not depend on them.
    dates = (
        f"WITH RECURSIVE dates (listen_date) AS ("
        f"SELECT MIN(listen_date) FROM {FACT_TABLE} "
        f"UNION ALL SELECT (SELECT MIN(listen_date) FROM {FACT_TABLE} WHERE listen_date > dates.listen_date) "
        f"FROM dates WHERE dates.listen_date IS NOT NULL)"
    )
    return (
        f"({dates} SELECT listen_date, CASE WHEN EXISTS ({enforced}) THEN 1 ELSE 0 END AS copies "
        f"FROM dates WHERE listen_date IS NOT NULL) AS fact_keys"
    )


def quality_checks(conn_id: str, backend: str) -> list[BaseSQLOperator]:
    """The check tasks, in the DAG being defined."""
    common: dict[str, Any] = {
        "conn_id": conn_id,
        "partition_clause": PARTITION_CLAUSE,
        "on_failure_callback": log_checked_dates,
    }
    checks: list[BaseSQLOperator] = []
    for kpi in kpi_tables():
        checks.append(
            SQLColumnCheckOperator(
                task_id=f"check_{kpi.name}_values", table=kpi.name, column_mapping=column_mapping(kpi), **common
            )
        )
        rules = {name: {"check_statement": rule} for name, rule in ROW_RULES.get(kpi.name, {}).items()}
        if rules:
            task_id = f"check_{kpi.name}_rows"
            checks.append(SQLTableCheckOperator(task_id=task_id, table=kpi.name, checks=rules, **common))
    checks.append(
        SQLTableCheckOperator(
            task_id="check_plays_reconcile", table=plays_per_date(), checks=reconciliation_checks(), **common
        )
    )
    checks.append(
        SQLTableCheckOperator(
            task_id="check_streams_keys_unique",
            table=fact_keys(backend),
            checks={"one_row_per_key": {"check_statement": "copies = 1"}},
            **common,
        )
    )
    return checks
