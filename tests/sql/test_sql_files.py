"""Every SQL file is checked in the dialect of the database that runs it.

The DAG's SQL steps (and the partials they include) are rendered and checked
for Redshift in tests/test_redshift_rendering.py. This file covers the rest:
warehouse lookups the Python tasks run (Redshift in production), the local
reports (PostgreSQL only), and the operational-database statements of the
rds_postgres source (PostgreSQL, the source's own engine).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from include.music_kpis.metadata_source import present_columns, render
from include.music_kpis.schemas import load_source_tables
from include.music_kpis.warehouse import SQL_DIR

DAG_STEPS = {"schema", "upsert_dimension", "load_streams", "record_batch", "refresh_kpis", "latest_kpi_counts"}
WAREHOUSE_LOOKUPS = {"select_ledger", "select_rejected_files", "select_load_errors"}


def sql_files(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.sql")}


def test_every_sql_file_is_in_a_checked_group() -> None:
    top = {name for name in sql_files(SQL_DIR) if not name.startswith("_")}
    assert top == DAG_STEPS | WAREHOUSE_LOOKUPS
    assert sql_files(SQL_DIR / "source") == {"extract_table", "table_summary", "seed_schema", "seed_upsert"}


@pytest.mark.parametrize("name", sorted(WAREHOUSE_LOOKUPS))
def test_warehouse_lookups_parse_as_redshift(name: str) -> None:
    statements = sqlglot.parse((SQL_DIR / f"{name}.sql").read_text(), dialect="redshift")
    assert [type(s) for s in statements] == [exp.Select]


@pytest.mark.parametrize("path", sorted((SQL_DIR / "reports").glob("*.sql")), ids=lambda p: p.stem)
def test_local_reports_parse_as_postgres(path: Path) -> None:
    text = path.read_text().replace("%(batch_id)s", "'b'")
    assert all(isinstance(s, exp.Select) for s in sqlglot.parse(text, dialect="postgres"))


TRACK_TYPES = {
    "track_id": "text",
    "artist": "text",
    "title": "text",
    "album": "text",
    "duration": "numeric",
    "genre": "text",
    "explicit": "boolean",
    "popularity": "integer",
    "updated_at": "timestamp with time zone",
}


@pytest.mark.parametrize("since", [None, "2026-01-01T00:00:00+00:00"])
def test_extract_statements_parse_as_postgres(since: str | None) -> None:
    tracks = load_source_tables()[1]
    context = {
        "table": "tracks",
        "columns": present_columns(tracks, TRACK_TYPES),
        "key": "track_id",
        "incremental": True,
        "updated_at": "updated_at",
        "since": since,
    }
    (copy,) = sqlglot.parse(render("extract_table.sql", **context), dialect="postgres")
    assert isinstance(copy, exp.Copy)
    select = copy.this.this
    assert [c.alias for c in select.expressions] == [c.name for c in context["columns"]]
    assert (select.args.get("where") is not None) == (since is not None)
    (summary,) = sqlglot.parse(render("table_summary.sql", **context), dialect="postgres")
    assert isinstance(summary, exp.Select)


def test_source_identifiers_are_quoted() -> None:
    statement = render("table_summary.sql", table='tra"cks', incremental=False, updated_at="updated_at", since=None)
    assert '"tra""cks"' in statement
