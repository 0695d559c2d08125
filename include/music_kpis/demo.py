"""`make demo`: run the real DAG on this machine, no cloud account, no Docker.

Starts moto (S3) on loopback and an embedded PostgreSQL warehouse (or uses
WAREHOUSE_URL), uploads a raw-bucket-shaped folder, runs the DAG once through
Airflow's own `dag.test()` code path, then writes the KPI tables and a run
summary to OUT. Warehouse and Airflow state live under `.local/`, so the next
run is incremental. Exit status 1 when a raw file was rejected (after every
good file was loaded) or the run failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from include.music_kpis.files import batch_id_for
from include.music_kpis.local_stack import (
    PROCESSED_BUCKET,
    RAW_BUCKET,
    PostgresTarget,
    airflow_environment,
    create_buckets,
    moto_server,
    postgres_server,
    upload_folder,
)
from include.music_kpis.metadata_source import METADATA_SOURCE_VARIABLE, METADATA_SOURCES, SOURCE_CONN_ID
from include.music_kpis.source_db import SOURCE_DATABASE, seed_from_raw_folder
from include.music_kpis.warehouse import SQL_DIR

PROJECT_DIR = Path(__file__).resolve().parents[2]
DAG_ID = "music_streaming_kpis"
WAREHOUSE_DATABASE = "music_kpis"

GENRE_COLUMNS = [
    "listen_date",
    "track_genre",
    "total_plays",
    "unique_listeners",
    "avg_popularity",
    "avg_duration_sec",
    "top_track_id",
]
HOURLY_COLUMNS = [
    "listen_date",
    "listen_hour",
    "unique_listeners",
    "total_plays",
    "unique_tracks",
    "track_diversity_index",
    "top_artist",
]


def airflow_home_environment(state_dir: Path) -> dict[str, str]:
    home = state_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
    }


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's own metadata DB (SQLite) once per Airflow version."""
    import airflow

    marker = Path(env["AIRFLOW_HOME"]) / f".migrated-{airflow.__version__}"
    if marker.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    marker.touch()


def run_dag() -> tuple[str, str]:
    """Run the DAG once through dag.test(); returns (run_id, state)."""
    from include.music_kpis.airflow_compat import dag_bag

    dagbag = dag_bag(str(PROJECT_DIR / "dags"))
    if dagbag.import_errors:
        raise RuntimeError(f"DAG import errors: {dagbag.import_errors}")
    run = dagbag.get_dag(DAG_ID).test()
    return run.run_id, str(getattr(run.state, "value", run.state))


REPORTS_DIR = SQL_DIR / "reports"


def seed_source_database(server: PostgresTarget, data: Path) -> dict[str, str]:
    """Create and seed the operational database beside the warehouse; the DAG's connection to it."""
    source = server.create_database(SOURCE_DATABASE)
    conn = source.connect()
    try:
        seeded = seed_from_raw_folder(conn, data)
    finally:
        conn.close()
    print(f"Source database {SOURCE_DATABASE} seeded from {data}: {seeded['users']} users, {seeded['tracks']} tracks")
    return {f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}": source.airflow_connection()}


def query(warehouse: PostgresTarget, statement: str, args: dict | tuple = ()) -> list[tuple]:
    conn = warehouse.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall()
    finally:
        conn.close()


def report(warehouse: PostgresTarget, name: str, **args: str) -> list[tuple]:
    """Run include/sql/reports/<name>.sql."""
    return query(warehouse, (REPORTS_DIR / f"{name}.sql").read_text(encoding="utf-8"), args)


def run_summary(warehouse: PostgresTarget, batch_id: str) -> dict[str, Any]:
    """run_summary.json of SPEC section 6."""
    (counts,) = report(warehouse, "table_counts")
    files = report(warehouse, "batch_files", batch_id=batch_id)
    quarantined = {"users": 0, "songs": 0, "streams": 0}
    for dataset, _, outcome, rows in files:
        if outcome == "loaded":
            quarantined[dataset] += rows
    return {
        "users_rows": counts[0],
        "songs_rows": counts[1],
        "streams_rows": counts[2],
        "parked_streams": counts[3],
        "quarantined_rows": quarantined,
        "rejected_files": [key for _, key, outcome, _ in files if outcome == "rejected"],
        "loaded_files": [key for _, key, outcome, _ in files if outcome == "loaded"],
        "skipped_files": [key for _, key, outcome, _ in files if outcome == "skipped"],
    }


def _csv_value(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def export_kpis(warehouse: PostgresTarget, out_dir: Path) -> dict[str, list[tuple]]:
    """Write genre_kpis.csv and hourly_kpis.csv: every row, sorted by key."""
    exported = {}
    for table, columns in (("genre_kpis", GENRE_COLUMNS), ("hourly_kpis", HOURLY_COLUMNS)):
        rows = report(warehouse, table)
        with (out_dir / f"{table}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([_csv_value(v) for v in row] for row in rows)
        exported[table] = rows
    return exported


def format_table(columns: list[str], rows: list[tuple], limit: int) -> str:
    shown = [[str(_csv_value(v)) for v in row] for row in rows[:limit]]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more rows")
    return "\n".join(lines)


def write_outputs(warehouse: PostgresTarget, run_id: str, state: str, out_dir: Path) -> int:
    """After a run: OUT's KPI CSVs and run_summary.json (SPEC section 6), the report on the
    terminal, and the exit status (1 when a file was rejected or the run did not succeed).
    Shared by `make demo` and `make run`."""
    summary = run_summary(warehouse, batch_id_for(run_id))
    streams = report(warehouse, "batch_streams", batch_id=batch_id_for(run_id))
    kpis = export_kpis(warehouse, out_dir)
    (out_dir / "run_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\ngenre_kpis ({len(kpis['genre_kpis'])} rows)\n" + format_table(GENRE_COLUMNS, kpis["genre_kpis"], 40))
    print(f"\nhourly_kpis ({len(kpis['hourly_kpis'])} rows)\n" + format_table(HOURLY_COLUMNS, kpis["hourly_kpis"], 24))
    if streams:
        rows, loaded, parked, repeats = streams[0]
        print(f"\nStream rows this run: {rows} read, {loaded} plays loaded, {repeats} repeats skipped, {parked} parked")
    print("\nrun_summary.json\n" + json.dumps(summary, indent=2))
    print(f"\nDAG run {run_id}: {state}. Output in {out_dir}")
    if summary["rejected_files"]:
        print(f"Rejected file(s): {', '.join(summary['rejected_files'])} (see the DAG log for why)", file=sys.stderr)
        return 1
    return 0 if state == "success" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT_DIR / "data" / "sample")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "out")
    parser.add_argument("--state", type=Path, default=PROJECT_DIR / ".local")
    parser.add_argument(
        "--metadata-source",
        choices=METADATA_SOURCES,
        default="s3_csv",
        help="rds_postgres: users and tracks from a seeded PostgreSQL source database, not from DATA's CSVs",
    )
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    args = parser.parse_args(argv)
    data, out_dir, state_dir = args.data.resolve(), args.out.resolve(), args.state.resolve()
    if not data.is_dir():
        parser.error(f"DATA folder not found: {data}")
    out_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    airflow_env = airflow_home_environment(state_dir)
    if not args.verbose:
        airflow_env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    os.environ.update(airflow_env)
    ensure_airflow_db(airflow_env)

    with postgres_server(state_dir) as server, moto_server() as endpoint:
        warehouse = server if os.environ.get("WAREHOUSE_URL") else server.create_database(WAREHOUSE_DATABASE)
        create_buckets(endpoint, RAW_BUCKET, PROCESSED_BUCKET)
        os.environ.update(airflow_environment(endpoint, warehouse))
        os.environ[f"AIRFLOW_VAR_{METADATA_SOURCE_VARIABLE.upper()}"] = args.metadata_source
        skip: tuple[str, ...] = ()
        if args.metadata_source == "rds_postgres":
            os.environ.update(seed_source_database(server, data))
            skip = ("metadata/",)  # users and tracks come from the source database
        uploaded = upload_folder(endpoint, data, RAW_BUCKET, skip_prefixes=skip)
        print(f"Uploaded {len(uploaded)} raw file(s) from {data} to s3://{RAW_BUCKET} (moto at {endpoint})")
        run_id, state = run_dag()
        return write_outputs(warehouse, run_id, state, out_dir)


if __name__ == "__main__":
    sys.exit(main())
