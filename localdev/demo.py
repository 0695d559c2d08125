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
the next `make demo` resumes from the state in `.local/`. The child
(localdev/dag_runner.py) starts first, before this process imports anything
heavy, and imports Airflow and parses the DAGs while the parent starts the
stack; then the parent hands it the run's connections and variables on its
stdin (never on a command line).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import version
from pathlib import Path
from types import FrameType

from include.music_kpis.settings import METADATA_SOURCE
from localdev.dag_runner import INTERRUPTED, PROJECT_DIR
from localdev.local_stack import (
    PROCESSED_BUCKET_NAME,
    RAW_BUCKET_NAME,
    airflow_environment,
    create_buckets,
    deployment_environment,
    moto_server,
    postgres_server,
    upload_folder,
)

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


# How long the DAG's process has to stop after Ctrl-C or SIGTERM before it is killed.
CHILD_STOP_SECONDS = 10


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
            [sys.executable, "-m", "localdev.dag_runner", str(result)], stdin=subprocess.PIPE, text=True
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """`make demo`; Ctrl-C or SIGTERM at any moment stops it cleanly (exit status 130)."""
    args = parser().parse_args(argv)
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
        # Imported once the DAG's process runs: its start is the critical path, these imports are not.
        from localdev.outputs import not_read, write_outputs
        from localdev.source_db import seed_source_database

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
