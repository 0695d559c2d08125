"""The two warehouse backends and what differs between them.

Production is Amazon Redshift; locally and in CI the same SQL files run on
PostgreSQL. The SQL files are Jinja templates: the few clauses that differ
are switched on the macros below, so both renderings stay side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from include.music_kpis.ddl import dataset_columns
from include.music_kpis.files import batch_id_for
from include.music_kpis.kpis import kpi_tables
from include.music_kpis.schemas import load_schema
from include.music_kpis.settings import BACKEND

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
FACT_TABLE = "streams"


def fact_key() -> list[str]:
    """The fact table's key in its primary key's order (schema.sql): the play's date, the time the
    date is derived from, then the rest of the streams schema's key. The date first keeps a batch's
    key lookups and index inserts within the batch's dates; the time next tells nearly every two
    plays apart, so sorts by this key (finding repeats, building the index) compare little more."""
    schema = load_schema(FACT_TABLE)
    (date,) = (d for d in schema.derived if d.name == "listen_date")
    return [date.name, date.source, *(column for column in schema.key if column != date.source)]


def sql_macros(backend: str) -> dict[str, Any]:
    """Jinja macros the SQL files use (the DAG's user_defined_macros)."""
    if backend not in BACKEND.allowed:
        raise ValueError(f"unknown warehouse backend {backend!r}: one of {BACKEND.allowed}")
    redshift = backend == "redshift"
    return {
        "backend": backend,
        "batch_id_for": batch_id_for,
        # Ties in KPIs go to the smallest value in byte order. Redshift compares
        # VARCHAR bytewise already; PostgreSQL needs the C collation for that.
        "byte_order": "" if redshift else 'COLLATE "C"',
        "now": "GETDATE()" if redshift else "CURRENT_TIMESTAMP",
        # Column encodings on Redshift (docs/warehouse-design.md): AZ64 for integers,
        # dates and timestamps, ZSTD for text, doubles and booleans, RAW for the first
        # sort key column, whose zone maps range-restricted scans rely on.
        "az64": " ENCODE AZ64" if redshift else "",
        "zstd": " ENCODE ZSTD" if redshift else "",
        "raw": " ENCODE RAW" if redshift else "",
        # The KPI tables (include/sql/kpis) and a dataset's warehouse columns (its schema YAML).
        "kpi_tables": kpi_tables,
        "dataset_columns": lambda dataset, **options: dataset_columns(dataset, backend, **options),
        "warehouse_columns": lambda dataset: [name for name, _ in load_schema(dataset).warehouse_columns],
        "key_columns": lambda dataset: list(load_schema(dataset).key),
        "fact_key": fact_key,
        "same_key": same_key,
    }


def same_key(dataset: str, left: str, right: str) -> str:
    """SQL condition: rows `left` and `right` have the same key of the dataset (its schema's `key`)."""
    return " AND ".join(f"{left}.{column} = {right}.{column}" for column in load_schema(dataset).key)


def sql_environment(backend: str) -> jinja2.Environment:
    """The SQL files' Jinja environment outside a DAG run (the DAG's has the same macros)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined)
    env.globals.update(sql_macros(backend))
    return env


def dimension_params(dataset: str) -> dict[str, Any]:
    """params of upsert_dimension.sql, derived from the dataset's schema."""
    schema = load_schema(dataset)
    # KPIs read songs only (users count by id): a changed song marks the dates it was played on.
    play_dates = {"songs": "song_play_dates"}
    return {
        "dataset": dataset,
        "key": schema.key[0],
        "columns": [name for name, _ in schema.warehouse_columns],
        "play_dates": play_dates.get(dataset),
    }
