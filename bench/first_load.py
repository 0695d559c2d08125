"""First-load cost of the warehouse steps: a batch of `--rows` plays staged into
an empty warehouse (embedded PostgreSQL), timed statement by statement.

What `make demo` does on a first load, without Airflow, S3 or the validation:
the staging tables are filled by SQL (the demo's shape: 5,000 users, 2,000
songs, plays over 5 days, 1 % of them repeated within the file, 0.1 % by
unknown users), then the DAG's own SQL files run as the DAG renders and splits
them, one transaction per file.

    python -m bench.first_load [--rows N] [--statements] [--explain] [--set name=value ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.incremental import STEPS, render, run_sql, run_step
from include.music_kpis.files import batch_id_for
from include.music_kpis.migrations import migrate
from localdev.local_stack import PostgresTarget, postgres_server

USERS, SONGS, DAYS = 5000, 2000, 5
RUN_ID = "first_load"

STAGE = """
INSERT INTO stg_files VALUES
    ('{batch}', '{users_file}', 'users', 'metadata/users/users.csv', 'e', 'loaded', NULL, {users}, 0),
    ('{batch}', '{songs_file}', 'songs', 'metadata/songs/songs.csv', 'e', 'loaded', NULL, {songs}, 0),
    ('{batch}', '{streams_file}', 'streams', 'streams/streams1.csv', 'e', 'loaded', NULL, {rows}, 0);
INSERT INTO stg_users SELECT g, 'u' || g, 30, 'NO', DATE '2024-01-01', '{users_file}', g
FROM generate_series(1, {users}) g;
INSERT INTO stg_songs (track_id, artists, popularity, duration_ms, "explicit", track_genre, duration_sec,
                       file_id, source_row)
SELECT 't' || g, 'artist ' || (g % 300), g % 101, 180000 + g, false, 'genre ' || (g % 6), (180000 + g) / 1000.0,
       '{songs_file}', g
FROM generate_series(1, {songs}) g;
-- Every 100th row repeats the row before it; every 1000th is by a user not in users.
INSERT INTO stg_streams
SELECT CASE WHEN b % 1000 = 999 THEN {users} + b ELSE 1 + (b::bigint * 7919) % {users} END,
       't' || (1 + (b / 7 * 104729::bigint) % {songs}), ts, ts::date, EXTRACT(hour FROM ts), '{streams_file}', g
FROM (SELECT g, b, TIMESTAMP '2024-03-01' + ((b::bigint * 2654435761) % ({days} * 86400)) * INTERVAL '1 second' AS ts
      FROM (SELECT g, CASE WHEN g % 100 = 0 THEN g - 1 ELSE g END AS b FROM generate_series(1, {rows}) g) r) s;
ANALYZE stg_streams;
ANALYZE stg_users;
ANALYZE stg_songs;
ANALYZE stg_files;
"""


def stage(db: PostgresTarget, rows: int) -> float:
    start = time.perf_counter()
    run_sql(
        db,
        STAGE.format(
            batch=batch_id_for(RUN_ID),
            users_file=batch_id_for(f"{RUN_ID}/users"),
            songs_file=batch_id_for(f"{RUN_ID}/songs"),
            streams_file=batch_id_for(f"{RUN_ID}/streams"),
            rows=rows,
            users=USERS,
            songs=SONGS,
            days=DAYS,
        ),
    )
    run_sql(db, "CHECKPOINT", autocommit=True)
    return time.perf_counter() - start


def measure(
    rows: int, statements: bool = False, settings: tuple[str, ...] = (), explain: bool = False
) -> dict[str, float]:
    """Seconds of each warehouse step of a first load of `rows` staged plays."""
    with tempfile.TemporaryDirectory() as state, postgres_server(Path(state)) as server:
        db = server.create_database("bench_first_load", drop_first=True)
        conn = db.connect()
        migrate(conn, "postgres")
        conn.close()
        for setting in settings:  # e.g. work_mem=256MB: what a server setting would change
            name, value = setting.split("=", 1)
            run_sql(db, f"ALTER DATABASE bench_first_load SET {name} = '{value}'", autocommit=True)
        print(f"staged {rows:,} rows in {stage(db, rows):.1f} s", flush=True)
        steps: dict[str, float] = {}
        for name, template, params in STEPS:
            seconds, timed = run_step(db, render(template, RUN_ID, **params), explain=explain)
            steps[name] = seconds
            print(f"{name}: {seconds:.2f} s", flush=True)
            if statements:
                for statement_seconds, statement, plan in sorted(timed, key=lambda t: -t[0])[:6]:
                    print(f"    {statement_seconds:7.2f}  {' '.join(statement.split())[:140]}")
                    if plan:
                        print("             " + plan.replace("\n", "\n             "))
        conn = db.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT stream_rows, streams_loaded, streams_parked, stream_repeats_skipped FROM etl_batches")
            print("rows/loaded/parked/repeats:", cur.fetchone())
        conn.close()
        return steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--statements", action="store_true", help="print each step's slowest statements")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest statements")
    parser.add_argument("--set", nargs="*", default=[], help="server settings for the run's sessions, name=value")
    args = parser.parse_args()
    measured = measure(args.rows, args.statements or args.explain, tuple(args.set), args.explain)
    print(f"total {sum(measured.values()):.1f} s")
