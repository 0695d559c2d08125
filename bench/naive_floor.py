"""The naive floor of a first load: what the least a pipeline could do with one
stream file takes on this machine, on the same embedded PostgreSQL as the demo.

pyarrow reads the CSV and writes Parquet (what validation's output costs at
least), then plain PostgreSQL: COPY of the raw text, one typed de-duplicating
CREATE TABLE AS, the primary key, and one per-date aggregate. No validation
rules, no lineage, no ledger, no dimensions: a floor, not a peer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from localdev.local_stack import PostgresTarget

DATABASE = "bench_floor"

SQL_STEPS = [
    (
        "typed de-duplicating CREATE TABLE AS",
        """CREATE TABLE floor_plays AS
           SELECT DISTINCT user_id::bigint AS user_id, track_id,
                  listen_time::timestamptz AT TIME ZONE 'UTC' AS listen_time
           FROM floor_raw""",
    ),
    ("primary key", "ALTER TABLE floor_plays ADD PRIMARY KEY (user_id, track_id, listen_time)"),
    (
        "per-date aggregate",
        """CREATE TABLE floor_daily AS
           SELECT listen_time::date AS listen_date, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners
           FROM floor_plays GROUP BY 1""",
    ),
]


def measure_floor(csv_path: Path, server: PostgresTarget, work_dir: Path) -> list[tuple[str, float]]:
    """(step, seconds) of the floor on `csv_path`, a stream file with a user_id,track_id,listen_time header."""
    steps: list[tuple[str, float]] = []
    start = time.perf_counter()
    pq.write_table(pacsv.read_csv(csv_path), work_dir / "floor.parquet")
    steps.append(("pyarrow CSV to Parquet", time.perf_counter() - start))
    (work_dir / "floor.parquet").unlink()

    db = server.create_database(DATABASE, drop_first=True)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute("CREATE TABLE floor_raw (user_id TEXT, track_id TEXT, listen_time TEXT)")
            start = time.perf_counter()
            with csv_path.open("rb") as raw:
                cur.copy_expert("COPY floor_raw FROM STDIN WITH (FORMAT csv, HEADER true)", raw)
            conn.commit()
            steps.append(("COPY of the raw text", time.perf_counter() - start))
            for name, statement in SQL_STEPS:
                start = time.perf_counter()
                cur.execute(statement)
                conn.commit()
                steps.append((name, time.perf_counter() - start))
    finally:
        conn.close()
    return steps
