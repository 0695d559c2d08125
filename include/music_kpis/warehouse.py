"""The two warehouse backends and what differs between them.

Production is Amazon Redshift; locally and in CI the same SQL files run on
PostgreSQL. The SQL files are Jinja templates: the few clauses that differ
are switched on the macros below, so both renderings stay side by side.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from include.music_kpis.files import batch_id_for
from include.music_kpis.schemas import load_schema

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
BACKENDS = ("redshift", "postgres")

# Airflow connection and variable names. Connections and variables come from
# the Airflow metadata DB, AIRFLOW_CONN_* / AIRFLOW_VAR_* env vars, or a
# secrets backend (AWS Secrets Manager on MWAA).
WAREHOUSE_CONN_ID = "music_kpis_warehouse"
AWS_CONN_ID = "aws_default"
# AWS connection whose `role_arn` extra is the IAM role Redshift COPY assumes.
REDSHIFT_COPY_CONN_ID = "music_kpis_redshift_copy"
BACKEND_VARIABLE = "music_kpis_backend"


def sql_macros(backend: str) -> dict[str, Any]:
    """Jinja macros the SQL files use (the DAG's user_defined_macros)."""
    if backend not in BACKENDS:
        raise ValueError(f"{BACKEND_VARIABLE} must be one of {BACKENDS}, not {backend!r}")
    return {
        "backend": backend,
        "batch_id_for": batch_id_for,
        # Ties in KPIs go to the smallest value in byte order. Redshift compares
        # VARCHAR bytewise already; PostgreSQL needs the C collation for that.
        "byte_order": "" if backend == "redshift" else 'COLLATE "C"',
        "now": "GETDATE()" if backend == "redshift" else "CURRENT_TIMESTAMP",
    }


def dimension_params(dataset: str) -> dict[str, Any]:
    """params of upsert_dimension.sql, derived from the dataset's schema."""
    schema = load_schema(dataset)
    kpi_columns = {"songs": ["track_genre", "artists", "popularity", "duration_ms"]}
    return {
        "dataset": dataset,
        "key": schema.key[0],
        "columns": [name for name, _ in schema.warehouse_columns],
        "kpi_columns": kpi_columns.get(dataset, []),
    }


def configured_backend() -> str:
    """The backend the DAG is built for, read once when the DAG file is parsed."""
    from include.music_kpis.airflow_compat import ParseTimeVariable

    env = os.environ.get(f"AIRFLOW_VAR_{BACKEND_VARIABLE.upper()}")
    if env:
        return env
    return ParseTimeVariable.get(BACKEND_VARIABLE, default="redshift")
