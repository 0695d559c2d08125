"""Where the time of one `make demo` goes, read from Airflow's own records.

dag.test() runs every task in the demo's process and records each task
instance's start and end in Airflow's metadata DB (SQLite under the state
folder), so the run splits into: starting the local stack and Airflow
(imports, embedded PostgreSQL, moto, upload, DAG parse), the Python tasks, the
warehouse (SQL) tasks, Airflow's own work between tasks, and the export after
the run.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

WAREHOUSE_TASKS = {
    "create_tables",
    "copy_to_staging",
    "upsert_users",
    "upsert_songs",
    "load_streams",
    "record_batch",
    "refresh_kpis",
}


def _instant(text: str) -> float:
    """A SQLite timestamp Airflow wrote (UTC) as epoch seconds."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def _latest_run_tasks(state_dir: Path) -> tuple[str, str, list[tuple[str, str, str]]]:
    """(run start, run end, [(task_id, start, end)]) of the latest DAG run, from Airflow's metadata DB."""
    db = sqlite3.connect(state_dir / "airflow" / "airflow.db")
    try:
        run_id, run_start, run_end = db.execute(
            "SELECT run_id, start_date, end_date FROM dag_run ORDER BY start_date DESC LIMIT 1"
        ).fetchone()
        tasks = db.execute(
            "SELECT task_id, start_date, end_date FROM task_instance "
            "WHERE run_id = ? AND start_date IS NOT NULL AND end_date IS NOT NULL",
            (run_id,),
        ).fetchall()
    finally:
        db.close()
    return run_start, run_end, tasks


def task_seconds(state_dir: Path) -> list[tuple[str, float]]:
    """(task_id, seconds) of the latest DAG run, slowest first; a mapped task's instances are summed."""
    _, _, tasks = _latest_run_tasks(state_dir)
    seconds: dict[str, float] = {}
    for task, start, end in tasks:
        seconds[task] = seconds.get(task, 0.0) + _instant(end) - _instant(start)
    return sorted(seconds.items(), key=lambda item: -item[1])


def demo_breakdown(state_dir: Path, started: float, finished: float) -> list[tuple[str, float]]:
    """(part, seconds) of the latest DAG run; ``started``/``finished`` are the command's epoch times."""
    run_start, run_end, tasks = _latest_run_tasks(state_dir)
    warehouse = sum(_instant(end) - _instant(start) for task, start, end in tasks if task in WAREHOUSE_TASKS)
    python = sum(_instant(end) - _instant(start) for task, start, end in tasks if task not in WAREHOUSE_TASKS)
    dag_run = _instant(run_end) - _instant(run_start)
    return [
        ("start: imports, embedded PostgreSQL, moto, upload, DAG parse", _instant(run_start) - started),
        ("Python tasks (list, validate+transform, stage, report)", python),
        ("warehouse tasks (DDL, COPY, MERGE, append, ledger, KPIs)", warehouse),
        ("Airflow between tasks (scheduling, XCom, state)", dag_run - python - warehouse),
        ("after the run: KPI export, shutdown", finished - _instant(run_end)),
    ]
