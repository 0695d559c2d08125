"""KPI tables as data: the YAML of each makes its DDL, INSERT column list and export;
a warehouse whose KPI table differs from its YAML gets it made anew and recomputed;
the refresh, which reads plays per track and hour, keeps every rule of a per-play count."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from pathlib import Path

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook

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


@pytest.mark.integration
def test_refresh_weighs_each_track_by_its_plays_and_keeps_the_plays_whose_song_is_known(warehouse) -> None:
    """Sums weighted by plays, NULL popularity left out of its average only, ties to the smallest
    value in byte order, and a play whose song is unknown counted nowhere (not even as a listener)."""
    conn = warehouse.connect()
    try:
        migrate(conn, "postgres")
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO songs (track_id, artists, popularity, duration_ms, "explicit", track_genre, duration_sec)
                VALUES ('B1', 'Zed', NULL, 1001, false, 'unrated', 1.001),
                       ('a1', 'abba', NULL, 2003, false, 'unrated', 2.003),
                       ('B2', 'abba', 7, 3001, false, 'mixed', 3.001),
                       ('a2', 'Zed', NULL, 4007, false, 'mixed', 4.007),
                       ('c3', 'Émile', 99, 5009, false, 'mixed', 5.009);
                INSERT INTO streams (user_id, track_id, listen_time, listen_date, listen_hour)
                SELECT user_id, track_id, TIMESTAMP '2024-04-01' + minute * INTERVAL '1 minute', DATE '2024-04-01',
                       minute / 60
                FROM (VALUES (1, 'B1', 60), (2, 'a1', 61), (3, 'B2', 62), (3, 'a2', 63), (9, 'ghost', 64),
                             (4, 'a2', 120), (4, 'c3', 121), (5, 'c3', 122), (5, 'B2', 123), (5, 'B2', 124),
                             (9, 'ghost', 180)) AS p (user_id, track_id, minute);
                DELETE FROM kpi_dirty_dates;
                INSERT INTO kpi_dirty_dates VALUES ('2024-04-01');
                """
            )
            text = sql_environment("postgres").get_template("refresh_kpis.sql").render()
            for statement in DbApiHook.split_sql_string(text):
                cur.execute(statement)
            assert cur.fetchall() == [("2024-04-01",)]
        day = date(2024, 4, 1)
        assert rows(conn, "SELECT * FROM genre_kpis ORDER BY track_genre") == [
            (day, "mixed", 7, 3, (3 * 7 + 2 * 99) / 5, (3 * 3001 + 2 * 4007 + 2 * 5009) / 7000, "B2"),
            (day, "unrated", 2, 2, None, (1001 + 2003) / 2000, "B1"),  # a tie: "B1" < "a1" in bytes
        ]
        assert rows(conn, "SELECT * FROM hourly_kpis ORDER BY listen_hour") == [
            (day, 1, 3, 4, 4, 1.0, "Zed"),  # Zed and abba two plays each: "Zed" < "abba" in bytes
            (day, 2, 2, 5, 3, 0.6, "abba"),  # abba and Émile two plays each: "a" < "É" in bytes
        ]
    finally:
        conn.close()
