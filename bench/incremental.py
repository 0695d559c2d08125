"""Incremental cost: the warehouse steps of a run that brings 100k new plays,
against a fact table of 1M rows and of 10M rows (embedded PostgreSQL).

The steps are the DAG's own SQL files, rendered for PostgreSQL the way the
DAG renders them; only the data set-up is written here.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import jinja2

from include.music_kpis.local_stack import PostgresTarget, postgres_server
from include.music_kpis.warehouse import SQL_DIR, dimension_params, sql_macros

RUN_ID = "bench"
STEPS = ["upsert_dimension.sql", "load_streams.sql", "record_batch.sql", "refresh_kpis.sql"]

# Plays spread over two years; the new batch lands on the last 7 days, a third of it repeats.
SETUP = """
INSERT INTO users SELECT g, 'u' || g, 30, 'NO', DATE '2024-01-01' FROM generate_series(1, 200000) g;
INSERT INTO songs (track_id, artists, popularity, duration_ms, "explicit", track_genre, duration_sec)
SELECT 't' || g, 'artist ' || (g % 500), g % 101, 180000 + g, false, 'genre ' || (g % 20), (180000 + g) / 1000.0
FROM generate_series(1, 20000) g;
INSERT INTO streams (user_id, track_id, listen_time, listen_date, listen_hour)
SELECT 1 + (g::bigint * 7919) % 200000, 't' || (1 + (g::bigint * 104729) % 20000), ts, ts::date, EXTRACT(hour FROM ts)
FROM (SELECT g, TIMESTAMP '2023-01-01' + (g % {span}) * INTERVAL '1 second' * 63 AS ts
      FROM generate_series(1, {rows}) g) s
ON CONFLICT DO NOTHING;
ANALYZE;
"""
BATCH = """
INSERT INTO stg_files VALUES ('{batch}', 'f1', 'streams', 'streams/new.csv', 'e', 'accepted', NULL, 100000, 0);
INSERT INTO stg_streams
SELECT 1 + (g * 31) % 200000, 't' || (1 + (g * 17) % 20000), ts, ts::date, EXTRACT(hour FROM ts), 'f1', g
FROM (SELECT g, TIMESTAMP '2024-12-24' + g * INTERVAL '6 second' AS ts FROM generate_series(1, 100000) g) s;
ANALYZE stg_streams;
"""


def render(name: str, **params: object) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SQL_DIR)))
    return env.get_template(name).render(run_id=RUN_ID, params=params, **sql_macros("postgres"))


def run_sql(db: PostgresTarget, text: str) -> None:
    conn = db.connect()
    with conn, conn.cursor() as cur:
        cur.execute(text)
    conn.close()


def measure(server: PostgresTarget, rows: int) -> float:
    db = server.create_database(f"bench_{rows}", drop_first=True)
    run_sql(db, render("create_tables.sql"))
    run_sql(db, SETUP.format(rows=rows, span=rows))
    run_sql(db, "DELETE FROM kpi_dirty_dates")
    from include.music_kpis.files import batch_id_for

    run_sql(db, BATCH.format(batch=batch_id_for(RUN_ID)))
    start = time.perf_counter()
    for step in STEPS:
        params = dimension_params("users") if step == "upsert_dimension.sql" else {}
        run_sql(db, render(step, **params))
    return time.perf_counter() - start


def main(small_rows: int = 1_000_000, large_rows: int = 10_000_000) -> tuple[float, float]:
    """Seconds of the warehouse steps against the small and the large fact table."""
    with tempfile.TemporaryDirectory() as state, postgres_server(Path(state)) as server:
        return measure(server, small_rows), measure(server, large_rows)


if __name__ == "__main__":
    print(main())
