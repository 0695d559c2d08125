"""`make demo`: run the real DAG on this machine, no cloud account, no Docker.

Starts moto (S3) on loopback and an embedded PostgreSQL warehouse (or uses
WAREHOUSE_URL), uploads a raw-bucket-shaped folder, runs the DAG once through
Airflow's own `dag.test()` code path, then writes the KPI tables and a run
summary to OUT. Warehouse and Airflow state live under `.local/`, so the next
run is incremental. Exit status 1 when a raw file was rejected (after every
good file was loaded) or the run failed.

The DAG runs in a child process: Airflow's task runner takes over SIGTERM in
the process that runs tasks, so only a parent that runs none can always turn
Ctrl-C or SIGTERM into a clean stop (the child first, then the S3 stand-in and
PostgreSQL, by the context managers that started them). Exit status 130 then;
the next `make demo` resumes from the state in `.local/`. The child starts
first and imports Airflow and parses the DAGs while the parent starts the
stack; then the parent hands it the run's connections and variables on its
stdin (never on a command line).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any

from include.music_kpis.exports import csv_value, write_kpi_csv
from include.music_kpis.files import batch_id_for, ignored_reason
from include.music_kpis.kpis import kpi_tables
from include.music_kpis.quarantine import BatchFile, write_local_csvs
from include.music_kpis.report_data import report_keys, run_files
from include.music_kpis.schemas import all_schemas
from include.music_kpis.settings import METADATA_SOURCE, SOURCE_CONN_ID
from include.music_kpis.warehouse import SQL_DIR
from localdev.local_stack import (
    PROCESSED_BUCKET_NAME,
    RAW_BUCKET_NAME,
    PostgresTarget,
    airflow_environment,
    connection_environment,
    create_buckets,
    deployment_environment,
    moto_server,
    postgres_server,
    s3_client,
    upload_folder,
)
from localdev.source_db import SOURCE_DATABASE, seed_from_raw_folder

PROJECT_DIR = Path(__file__).resolve().parents[1]
DAG_ID = "music_streaming_kpis"
WAREHOUSE_DATABASE = "music_kpis"


def airflow_home_environment(state_dir: Path) -> dict[str, str]:
    home = state_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Every task runs in the DAG's one process: its hooks share botocore's parsed models.
        "AIRFLOW__AWS__SESSION_FACTORY": "localdev.aws_session.SharedLoaderSessionFactory",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
    }


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's own metadata DB (SQLite) once per Airflow version."""
    # The installed version without importing Airflow (seconds) in a process that runs no task.
    marker = Path(env["AIRFLOW_HOME"]) / f".migrated-{version('apache-airflow')}"
    if marker.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    marker.touch()


def parse_dags() -> Any:
    """The DagBag of dags/ (parsing needs no metadata database: it may be made meanwhile)."""
    from include.music_kpis.airflow_compat import dag_bag

    dagbag = dag_bag(str(PROJECT_DIR / "dags"))
    if dagbag.import_errors:
        raise RuntimeError(f"DAG import errors: {dagbag.import_errors}")
    return dagbag


def run_dag(dagbag: Any | None = None) -> tuple[str, str]:
    """Run the DAG once through dag.test() (dags/ parsed now unless given); returns (run_id, state)."""
    dagbag = dagbag or parse_dags()
    register_dags(dagbag)
    one_execution_api()
    run = dagbag.get_dag(DAG_ID).test()
    return run.run_id, str(getattr(run.state, "value", run.state))


def one_execution_api() -> None:
    """Give Airflow 3.0's dag.test() one in-process execution API per process, as 3.1 has.

    dag.test() runs every task in this process against Airflow's execution API,
    served in-process. Airflow 3.0 builds a new one for every task instance (the
    FastAPI app and Cadwyn's versioned routes: 3-4 s of CPU each); from 3.1
    supervisor.in_process_api_server is cached (functools.lru_cache), and each
    task still sets the DAG the API serves. Local tooling only: a deployed
    Airflow runs tasks through its own API server.
    """
    from airflow.sdk.execution_time import supervisor

    if not hasattr(supervisor.in_process_api_server, "cache_info"):  # Airflow 3.0
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)


def warm_execution_api() -> None:
    """Build the execution API that dag.test() talks to (one_execution_api) before the run
    starts: its first request builds the app, so building it here moves that work into
    the time the DAG's process waits for the stack."""
    from airflow.sdk.execution_time import supervisor

    one_execution_api()
    import httpx

    api = supervisor.in_process_api_server()
    httpx.Client(transport=api.transport, base_url="http://in-process").get("/health").raise_for_status()


@contextmanager
def start_up_objects_kept() -> Iterator[None]:
    """No garbage collection while Airflow is imported, the DAGs parsed and the execution API
    built (the start's critical path); what they made is then frozen, as Airflow's own
    processes do before they fork.

    That work makes some 840k long-lived objects and little garbage, yet each full
    collection walks them all again (a quarter to a third of the execution API's build);
    frozen, they are not walked by the collections of the run's tasks either.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def register_dags(dagbag: Any) -> None:
    """Record the DAGs and their Assets in Airflow's database before a dag.test() on Airflow 3.0.

    Airflow 3.0's dag.test() does not, so refresh_kpis, whose outlets are the KPI Assets, would
    fail as updating inactive Assets (apache/airflow#51644); from 3.1 dag.test() records them
    itself, and a scheduler's DAG processor always does.
    """
    if not hasattr(dagbag, "sync_to_db"):  # Airflow >= 3.1
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    dagbag.sync_to_db(bundle_name="dags-folder", bundle_version=None)


# How long the DAG's process has to stop after Ctrl-C or SIGTERM before it is killed.
CHILD_STOP_SECONDS = 10
INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT


RunDag = Callable[[dict[str, str]], tuple[str, str]]


@contextmanager
def dag_process() -> Iterator[RunDag]:
    """A child process that imports Airflow, parses the DAGs and builds the execution API (in this
    process's environment: Airflow's home and the deployment choices the DAG files read) while
    the caller makes Airflow's database and starts the stack; yields run(environment) -> (run_id,
    state), which hands it the run's environment (connections, variables) and waits for its run.
    Stopped on the way out if still running."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "run.json"
        child = subprocess.Popen(
            [sys.executable, "-m", "localdev.demo", "--run-dag-to", str(result)], stdin=subprocess.PIPE, text=True
        )

        def run(environment: dict[str, str]) -> tuple[str, str]:
            try:
                hand_over(child, environment)
                code = child.wait()
            except BaseException:
                stop_child(child)
                raise
            if code == INTERRUPTED:  # the DAG's process was interrupted (this one may ignore SIGINT: a background job)
                raise KeyboardInterrupt("the DAG's process")
            if code != 0 or not result.exists():
                raise RuntimeError(f"the DAG run stopped with exit status {code}; see the log above")
            answer = json.loads(result.read_text(encoding="utf-8"))
            return answer["run_id"], answer["state"]

        try:
            yield run
        finally:
            stop_child(child)


def hand_over(child: subprocess.Popen, environment: dict[str, str]) -> None:
    """The run's environment to the waiting child: one JSON line on its stdin, then end of input."""
    assert child.stdin is not None
    with suppress(BrokenPipeError):  # it stopped already: its exit status says why
        child.stdin.write(json.dumps(environment) + "\n")
        child.stdin.close()


def stop_child(child: subprocess.Popen) -> None:
    """SIGINT (Airflow's task runner keeps SIGTERM for itself), then SIGKILL after CHILD_STOP_SECONDS."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if child.stdin is not None:
        with suppress(BrokenPipeError):
            child.stdin.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def not_read(keys: list[str]) -> list[tuple[str, str]]:
    """Uploaded keys the DAG will not read, with the reason."""
    prefixes = tuple(schema.raw_prefix for schema in all_schemas())
    skipped = []
    for key in keys:
        reason = ignored_reason(key) if key.startswith(prefixes) else f"not under a raw prefix ({', '.join(prefixes)})"
        if reason:
            skipped.append((key, reason))
    return skipped


# Why each file of the batch was rejected (etl_batch_files, written by record_batch).
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
    return {connection_environment(SOURCE_CONN_ID): source.airflow_connection()}


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
    """run_summary.json of contract section 6."""
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


def export_kpis(warehouse: PostgresTarget, out_dir: Path) -> dict[str, list[tuple]]:
    """Write <kpi table>.csv for every KPI table (genre_kpis.csv, hourly_kpis.csv): every row, sorted
    by key, text spreadsheet-safe; the query and writer of the production exports (exports.py)."""
    exported = {}
    for kpi in kpi_tables():
        rows = query(warehouse, kpi.export_query())
        with (out_dir / f"{kpi.name}.csv").open("w", newline="", encoding="utf-8") as handle:
            write_kpi_csv(handle, kpi.column_names, rows)
        exported[kpi.name] = rows
    return exported


def copy_published_report(s3: Any, bucket: str, run_id: str, path: Path) -> bool:
    """OUT/report.html: the report the run's publish_report task wrote to the processed bucket
    (the S3 stand-in goes away with the run); False when the run stopped before it."""
    path.unlink(missing_ok=True)  # never a previous run's report
    try:
        body = s3.get_object(Bucket=bucket, Key=report_keys(run_id)[0])["Body"].read()
    except s3.exceptions.NoSuchKey:
        return False
    path.write_bytes(body)
    return True


# Reasons listed on the terminal; OUT/quarantine/ and the report have them all.
COMMON_REASONS = 10


def write_quarantine(s3: Any, bucket: str, files: list[BatchFile], out_dir: Path) -> None:
    """OUT/quarantine/<dataset>/<file>.csv from the quarantine Parquet of this run's files (the
    S3 stand-in goes away with the run), and the most common reasons on the terminal."""
    shutil.rmtree(out_dir / "quarantine", ignore_errors=True)  # this run's rows only
    counts = write_local_csvs(s3, bucket, files, out_dir)
    if not counts:
        return
    common = counts.most_common(COMMON_REASONS)
    print(f"\nQuarantined rows by reason ({sum(counts.values())} rows; each with its row number and reason in "
          f"{out_dir / 'quarantine'}):")  # fmt: skip
    print("\n".join(f"  {n:>8}  {dataset}: {reason}" for (dataset, reason), n in common))
    if len(counts) > COMMON_REASONS:
        print(f"  ... {len(counts) - COMMON_REASONS} more reasons")


def format_table(columns: list[str], rows: list[tuple], limit: int) -> str:
    shown = [[str(csv_value(v)) for v in row] for row in rows[:limit]]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more rows")
    return "\n".join(lines)


def write_outputs(
    warehouse: PostgresTarget,
    run_id: str,
    state: str,
    out_dir: Path,
    resume: str,
    s3_endpoint: str,
    processed_bucket: str = PROCESSED_BUCKET_NAME,
) -> int:
    """After a run: OUT's KPI CSVs, run_summary.json (contract section 6), quarantine/ and
    report.html (the one the run published), the report on the terminal, and the exit status (1 when a file was rejected
    or the run did not succeed; `resume` says how to finish it). Shared by `make demo` and
    `make run`; the processed bucket at `s3_endpoint` is still up."""
    batch = batch_id_for(run_id)
    summary = run_summary(warehouse, batch)
    rejected = report(warehouse, "rejected_files", batch_id=batch)
    streams = report(warehouse, "batch_streams", batch_id=batch)
    kpis = export_kpis(warehouse, out_dir)
    (out_dir / "run_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    s3 = s3_client(s3_endpoint)
    files = run_files(lambda statement: query(warehouse, statement), "postgres", run_id)
    report_written = copy_published_report(s3, processed_bucket, run_id, out_dir / "report.html")
    for kpi in kpi_tables():
        rows = kpis[kpi.name]
        print(f"\n{kpi.name} ({len(rows)} rows)\n" + format_table(kpi.column_names, rows, 40))
    if streams:
        rows, loaded, parked, repeats = streams[0]
        print(f"\nStream rows this run: {rows} read, {loaded} plays loaded, {repeats} repeats skipped, {parked} parked")
    print("\nrun_summary.json\n" + json.dumps(summary, indent=2))
    write_quarantine(s3, processed_bucket, files, out_dir)
    if report_written:
        print(f"\nKPI report: {out_dir / 'report.html'} (one file; opens offline in any browser)")
    else:
        print("\nNo KPI report: the run stopped before its publish_report task.")
    print(f"\nDAG run {run_id}: {state}. Output in {out_dir}")
    if rejected:
        lines = "\n".join(f"  {key}: {reason}" for key, reason in rejected)
        print(f"{len(rejected)} raw file(s) rejected; every other file was loaded:\n{lines}", file=sys.stderr)
        return 1
    if state != "success":
        print(f"The DAG run failed: see the task log above (--verbose shows all of it). {resume}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT_DIR / "data" / "sample")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "out")
    parser.add_argument("--state", type=Path, default=PROJECT_DIR / ".local")
    parser.add_argument(
        "--metadata-source",
        choices=METADATA_SOURCE.allowed,
        default=METADATA_SOURCE.default,
        help="rds_postgres: users and tracks from a seeded PostgreSQL source database, not from DATA's CSVs",
    )
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    parser.add_argument("--run-dag-to", type=Path, help=argparse.SUPPRESS)  # the DAG's child process
    return parser


def main(argv: list[str] | None = None) -> int:
    """`make demo`; Ctrl-C or SIGTERM at any moment stops it cleanly (exit status 130)."""
    args = parser().parse_args(argv)
    if args.run_dag_to:
        code = _run_dag_child(args.run_dag_to)
        # The interpreter's last garbage collection would walk Airflow's objects for seconds,
        # freeing nothing this process needs freed: exit handlers still run, the OS takes the rest.
        gc.freeze()
        return code
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print(
            "\nStopped: the DAG run, the S3 stand-in and PostgreSQL are shut down; nothing half-loaded is kept. "
            f"Run `make demo` again (same DATA) to resume: the state is in {args.state}.",
            file=sys.stderr,
        )
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_dag_child(result: Path) -> int:
    """The child of dag_process(): parses the DAGs, then runs the DAG in the environment the
    parent hands over on stdin (end of input without it: the parent's set-up failed, no run).
    The parent reports an interruption, not this process."""
    # Until the run starts this process holds nothing to clean up: an interruption ends it
    # at once, and quietly even in the middle of an import.
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(INTERRUPTED))
    try:
        with start_up_objects_kept():
            dagbag = parse_dags()
            warm_execution_api()
        environment = sys.stdin.readline()
        if not environment:
            return 1
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.update(json.loads(environment))
        run_id, state = run_dag(dagbag)
    except KeyboardInterrupt:
        return INTERRUPTED
    result.write_text(json.dumps({"run_id": run_id, "state": state}), encoding="utf-8")
    return 0


def _main(args: argparse.Namespace) -> int:
    data, out_dir, state_dir = args.data.resolve(), args.out.resolve(), args.state.resolve()
    if not data.is_dir():
        parser().error(f"DATA folder not found: {data}")
    out_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    airflow_env = airflow_home_environment(state_dir)
    if not args.verbose:
        airflow_env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    # What the DAG files read when parsed is known now, so the DAG's process parses them while the stack starts.
    airflow_env.update(deployment_environment())
    airflow_env[METADATA_SOURCE.environment_variable] = args.metadata_source
    os.environ.update(airflow_env)

    # An interruption stops the DAG's process (run_dag_with), then the S3 stand-in and PostgreSQL.
    with dag_process() as run_dag_with, postgres_server(state_dir) as server, moto_server() as endpoint:
        ensure_airflow_db(airflow_env)  # the DAG's process uses the database only once handed the run
        warehouse = server if os.environ.get("WAREHOUSE_URL") else server.create_database(WAREHOUSE_DATABASE)
        create_buckets(endpoint, RAW_BUCKET_NAME, PROCESSED_BUCKET_NAME)
        run_environment = airflow_environment(endpoint, warehouse)
        skip: tuple[str, ...] = ()
        if args.metadata_source == "rds_postgres":
            run_environment.update(seed_source_database(server, data))
            skip = ("metadata/",)  # users and tracks come from the source database
        uploaded = upload_folder(endpoint, data, RAW_BUCKET_NAME, skip_prefixes=skip)
        print(f"Uploaded {len(uploaded)} raw file(s) from {data} to s3://{RAW_BUCKET_NAME} (moto at {endpoint})")
        for key, reason in not_read(uploaded):
            print(f"Ignored {key}: {reason}", file=sys.stderr)
        run_id, state = run_dag_with(run_environment)
        resume = f"Run `make demo` again (same DATA) to finish it: the state is in {state_dir}."
        return write_outputs(warehouse, run_id, state, out_dir, resume, endpoint)


if __name__ == "__main__":
    sys.exit(main())
