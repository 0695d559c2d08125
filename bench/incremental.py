"""Incremental cost: the warehouse steps of a run that brings 100k new plays,
against a fact table of 1M rows and of 10M rows (embedded PostgreSQL).

The steps are the DAG's own SQL files, rendered for PostgreSQL the way the
DAG renders them, split into statements the way SQLExecuteQueryOperator
splits them and run as one transaction per file; only the data set-up is
written here.

Both histories have the same shape per date (one play every 63 s from
2023-01-01; the larger one just reaches further), and every batch lands on
dates both histories cover, so the two sides do the same work and differ only
in how much history lies around it. Each side gets a warm-up batch first, then
`--repeats` measured batches on dates of their own (interleaved between the
sides, so machine noise hits both); the result is the median.

    python -m bench.incremental [--small-rows N] [--large-rows N] [--repeats N] [--statements] [--explain]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import jinja2

from include.music_kpis.files import batch_id_for
from include.music_kpis.migrations import migrate
from include.music_kpis.warehouse import SQL_DIR, dimension_params, sql_macros
from localdev.local_stack import PostgresTarget, postgres_server

# The DAG's warehouse steps of a run, in its order (create_tables excluded: idempotent DDL).
STEPS = [
    ("upsert_users", "upsert_dimension.sql", dimension_params("users")),
    ("upsert_songs", "upsert_dimension.sql", dimension_params("songs")),
    ("load_streams", "load_streams.sql", {}),
    ("record_batch", "record_batch.sql", {}),
    ("refresh_kpis", "refresh_kpis.sql", {}),
]
BATCH_ROWS = 100_000
KNOWN_USERS = 200_000
# Batches land on the last dates of the 1M-row history (which ends 2024-12-30), going back.
LAST_BATCH_START = date(2024, 12, 22)
BATCH_SPACING_DAYS = 10  # a batch spans 7 days (100k plays, one every 6 s)

HISTORY = """
INSERT INTO users SELECT g, 'u' || g, 30, 'NO', DATE '2024-01-01' FROM generate_series(1, {known_users}) g;
INSERT INTO songs (track_id, artists, popularity, duration_ms, "explicit", track_genre, duration_sec)
SELECT 't' || g, 'artist ' || (g % 500), g % 101, 180000 + g, false, 'genre ' || (g % 20), (180000 + g) / 1000.0
FROM generate_series(1, 20000) g;
INSERT INTO streams (user_id, track_id, listen_time, listen_date, listen_hour)
SELECT 1 + (g::bigint * 7919) % {known_users}, 't' || (1 + (g::bigint * 104729) % 20000), ts, ts::date,
       EXTRACT(hour FROM ts)
FROM (SELECT g, TIMESTAMP '2023-01-01' + g * INTERVAL '63 second' AS ts FROM generate_series(1, {rows}) g) s
ON CONFLICT DO NOTHING;
INSERT INTO kpi_dirty_dates SELECT DISTINCT listen_date FROM streams;
-- The files that history came from, one per 10k plays, in the ledger and the batch log.
INSERT INTO etl_file_ledger (file_id, dataset, raw_key, etag, outcome, rows_read, rows_quarantined, batch_id)
SELECT md5('file' || g), 'streams', 'streams/history/' || g || '.csv', md5('etag' || g), 'loaded', 10000, 0,
       md5('batch' || g / 10)
FROM generate_series(1, {rows} / 10000) g;
INSERT INTO etl_batch_files (batch_id, file_id, dataset, raw_key, outcome, rows_read, rows_quarantined)
SELECT batch_id, file_id, dataset, raw_key, outcome, rows_read, rows_quarantined FROM etl_file_ledger;
"""

# One run's staging: a streams file of 100k rows (95k new plays, 1% of them by users not
# in the warehouse yet, which are parked; 5k repeats of plays already loaded), and a users
# file that brings the users the previous batch parked plays of (so those plays load now).
BATCH = """
INSERT INTO stg_files VALUES
    ('{batch}', '{streams_file}', 'streams', 'streams/{batch}.csv', 'e', 'loaded', NULL, {batch_rows}, 0),
    ('{batch}', '{users_file}', 'users', 'metadata/users/{batch}.csv', 'e', 'loaded', NULL, 1000, 0);
INSERT INTO stg_streams
SELECT CASE WHEN g % 100 = 0 THEN {new_users} + g / 100 ELSE 1 + (g * 31) % {known_users} END,
       't' || (1 + (g * 17) % 20000), ts, ts::date, EXTRACT(hour FROM ts), '{streams_file}', g
FROM (SELECT g, TIMESTAMP '{start}' + g * INTERVAL '6 second' AS ts
      FROM generate_series(1, {new_rows}) g) s;
INSERT INTO stg_streams
SELECT user_id, track_id, listen_time, listen_date, listen_hour, '{streams_file}', {new_rows} + ROW_NUMBER() OVER ()
FROM (SELECT * FROM streams WHERE listen_date >= DATE '{start}' AND listen_date < DATE '{start}' + 7
      ORDER BY listen_time LIMIT {repeat_rows}) r;
INSERT INTO stg_users
SELECT {parked_users} + k, 'u' || ({parked_users} + k), 30, 'NO', DATE '2024-01-01', '{users_file}', k
FROM generate_series(1, {parked_count}) k;
ANALYZE stg_streams;
ANALYZE stg_users;
ANALYZE stg_files;
"""


def render(name: str, run_id: str, **params: object) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SQL_DIR)))
    return env.get_template(name).render(run_id=run_id, params=params, **sql_macros("postgres"))


def split(text: str) -> list[str]:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    return DbApiHook.split_sql_string(text)


def run_sql(db: PostgresTarget, text: str, *, autocommit: bool = False) -> None:
    conn = db.connect()
    conn.autocommit = autocommit
    with conn.cursor() as cur:
        cur.execute(text)
    if not autocommit:
        conn.commit()
    conn.close()


def run_step(db: PostgresTarget, text: str, explain: bool) -> tuple[float, list[tuple[float, str, str]]]:
    """Seconds of one step (its statements and the commit, one transaction) and per statement."""
    conn = db.connect()
    per_statement = []
    with conn.cursor() as cur:
        start = time.perf_counter()
        for statement in split(text):
            plan = ""
            t0 = time.perf_counter()
            head = statement.lstrip().split(None, 3)
            explainable = head[0].upper() in {"INSERT", "DELETE", "UPDATE", "MERGE", "SELECT"} or head[:3] == [
                "CREATE",
                "TEMP",
                "TABLE",
            ]
            if explain and explainable:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
                plan = "\n".join(row[0] for row in cur.fetchall())
            else:
                cur.execute(statement)
            per_statement.append((time.perf_counter() - t0, statement, plan))
        t0 = time.perf_counter()
        conn.commit()
        per_statement.append((time.perf_counter() - t0, "COMMIT", ""))
        total = time.perf_counter() - start
    conn.close()
    return total, per_statement


def set_up(server: PostgresTarget, rows: int) -> PostgresTarget:
    """A warehouse holding `rows` plays of history with their KPIs, vacuumed, analyzed, checkpointed."""
    db = server.create_database(f"bench_{rows}", drop_first=True)
    conn = db.connect()
    migrate(conn, "postgres")
    conn.close()
    run_sql(db, HISTORY.format(rows=rows, known_users=KNOWN_USERS))
    run_sql(db, render("refresh_kpis.sql", "setup"))
    # What a warehouse that has been running for a while looks like: vacuumed and
    # analyzed (no hint-bit writes or autovacuum of the bulk load during the measurement).
    run_sql(db, "VACUUM (FREEZE, ANALYZE)", autocommit=True)
    run_sql(db, "CHECKPOINT", autocommit=True)
    return db


def run_batch(db: PostgresTarget, number: int, explain: bool = False) -> tuple[float, dict[str, float], list]:
    run_id = f"bench_{number}"
    batch = batch_id_for(run_id)
    start = LAST_BATCH_START - timedelta(days=BATCH_SPACING_DAYS * number)
    new_users = 10_000_000 + 1000 * number  # ids far above the known users
    run_sql(
        db,
        BATCH.format(
            batch=batch,
            streams_file=batch_id_for(f"{run_id}/streams"),
            users_file=batch_id_for(f"{run_id}/users"),
            batch_rows=BATCH_ROWS,
            new_rows=BATCH_ROWS - 5000,
            repeat_rows=5000,
            known_users=KNOWN_USERS,
            new_users=new_users,
            start=start.isoformat(),
            parked_users=new_users - 1000,
            parked_count=1000 if number else 0,
        ),
    )
    # Runs are a day apart and checkpoints minutes apart, so a run finds every page
    # clean and pays for a full-page image of each page it first writes: so here too.
    run_sql(db, "CHECKPOINT", autocommit=True)
    steps: dict[str, float] = {}
    statements = []
    for name, template, params in STEPS:
        seconds, per_statement = run_step(db, render(template, run_id, **params), explain)
        steps[name] = seconds
        statements.extend((name, *s) for s in per_statement)
    return sum(steps.values()), steps, statements


def batch_outcome(db: PostgresTarget, number: int) -> tuple:
    conn = db.connect()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT stream_rows, streams_loaded, streams_parked, stream_repeats_skipped FROM etl_batches "
            "WHERE batch_id = %s",
            (batch_id_for(f"bench_{number}"),),
        )
        row = cur.fetchone()
    conn.close()
    return row


def measure(
    small_rows: int, large_rows: int, repeats: int, statements: bool = False, explain: bool = False
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as state, postgres_server(Path(state)) as server:
        sides = {"small": set_up(server, small_rows), "large": set_up(server, large_rows)}
        totals: dict[str, list[float]] = defaultdict(list)
        per_step: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        per_statement: dict[str, dict[tuple[str, int], list]] = defaultdict(lambda: defaultdict(list))
        for number in range(repeats + 1):  # batch 0 is the warm-up
            for side, db in sides.items():
                total, steps, timed = run_batch(db, number, explain and number == repeats)
                if number == 0:
                    continue
                totals[side].append(total)
                for name, seconds in steps.items():
                    per_step[side][name].append(seconds)
                for index, (step, seconds, statement, plan) in enumerate(timed):
                    per_statement[side][(step, index)].append((seconds, statement, plan))
        for side, db in sides.items():
            outcome = batch_outcome(db, repeats)
            steps_text = ", ".join(f"{n} {statistics.median(v):.2f}" for n, v in per_step[side].items())
            print(
                f"{side}: median {statistics.median(totals[side]):.2f} s of {[round(t, 2) for t in totals[side]]}; "
                f"{steps_text}; last batch rows/loaded/parked/repeats {outcome}"
            )
        if statements or explain:
            for side in sides:
                ranked = sorted(per_statement[side].items(), key=lambda kv: -statistics.median(s for s, _, _ in kv[1]))
                print(f"\n== {side}: slowest statements (median s)")
                for (step, _), runs in ranked[:12]:
                    seconds = statistics.median(s for s, _, _ in runs)
                    print(f"{seconds:7.3f}  {step}: {' '.join(runs[-1][1].split())[:150]}")
                    if explain and runs[-1][2]:
                        print("         " + runs[-1][2].replace("\n", "\n         "))
        return statistics.median(totals["small"]), statistics.median(totals["large"])


def main(small_rows: int = 1_000_000, large_rows: int = 10_000_000, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of the warehouse steps against the small and the large fact table."""
    return measure(small_rows, large_rows, repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--large-rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="measured batches per side (after one warm-up)")
    parser.add_argument("--statements", action="store_true", help="print the slowest statements")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the last batch's statements")
    args = parser.parse_args()
    small, large = measure(args.small_rows, args.large_rows, args.repeats, args.statements, args.explain)
    print(f"{small:.2f} s vs {large:.2f} s: ratio {large / small:.2f}")
