"""KPI tables as data: the YAML of each makes its DDL, INSERT column list and export;
a warehouse whose KPI table differs from its YAML gets it made anew and recomputed."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from pathlib import Path

import pytest

from include.music_kpis import migrations
from include.music_kpis.kpis import KpiColumn, kpi_table, kpi_tables
from include.music_kpis.migrations import migrate, reconcile_kpi_tables
from include.music_kpis.warehouse import sql_environment

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def contract_columns() -> dict[str, list[str]]:
    """The column order of each KPI table, as docs/contract.md section 5 states it."""
    lines = re.findall(r"^    (listen_date,\w+,.*)$", CONTRACT.read_text(), re.MULTILINE)
    return {"genre_kpis": lines[0].split(","), "hourly_kpis": lines[1].split(",")}


def test_kpi_tables_start_with_the_contract_columns_in_order() -> None:
    assert [t.name for t in kpi_tables()] == ["genre_kpis", "hourly_kpis"]
    for name, columns in contract_columns().items():
        assert kpi_table(name).column_names[: len(columns)] == columns


def test_refresh_inserts_each_table_with_its_yaml_columns() -> None:
    text = sql_environment("redshift").get_template("refresh_kpis.sql").render()
    for kpi in kpi_tables():
        assert f"INSERT INTO {kpi.name} ({', '.join(kpi.column_names)})" in text


def test_export_is_sorted_by_key_in_byte_order() -> None:
    genre, hourly = kpi_table("genre_kpis"), kpi_table("hourly_kpis")
    assert genre.export_query().endswith('ORDER BY genre_kpis.listen_date, genre_kpis.track_genre COLLATE "C"')
    assert genre.export_query("redshift").endswith("ORDER BY genre_kpis.listen_date, genre_kpis.track_genre")
    assert hourly.export_query().endswith("ORDER BY hourly_kpis.listen_date, hourly_kpis.listen_hour")


def rows(conn, query: str) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


@pytest.mark.integration
def test_a_changed_yaml_rebuilds_the_table_and_marks_every_date(warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = warehouse.connect()
    try:
        migrate(conn, "postgres")
        rows(conn, "INSERT INTO streams VALUES (1, 't1', '2025-03-01 10:00', '2025-03-01', 10) RETURNING 1")
        rows(conn, "INSERT INTO streams VALUES (1, 't1', '2025-03-04 10:00', '2025-03-04', 10) RETURNING 1")
        rows(conn, "INSERT INTO genre_kpis VALUES ('2025-03-01', 'pop', 1, 1, 50, 200, 't1') RETURNING 1")
        assert reconcile_kpi_tables(conn, "postgres") == []  # as its YAML says: left alone

        genre, hourly = kpi_table("genre_kpis"), kpi_table("hourly_kpis")
        wider = dataclasses.replace(genre, columns=(*genre.columns, KpiColumn("unique_artists", "bigint")))
        monkeypatch.setattr(migrations, "kpi_tables", lambda: (wider, hourly))
        assert reconcile_kpi_tables(conn, "postgres") == ["genre_kpis"]

        columns = rows(
            conn,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'genre_kpis' "
            "ORDER BY ordinal_position",
        )
        assert [c for (c,) in columns] == wider.column_names
        assert rows(conn, "SELECT COUNT(*) FROM genre_kpis") == [(0,)]
        assert rows(conn, "SELECT listen_date FROM kpi_dirty_dates ORDER BY 1") == [
            (date(2025, 3, 1),),
            (date(2025, 3, 4),),
        ]
        assert reconcile_kpi_tables(conn, "postgres") == []  # once
    finally:
        conn.close()
