"""The DAG's process of `make demo`: `python -m localdev.dag_runner RESULT_JSON`.

It imports Airflow, parses the DAGs and builds the execution API while its parent
(localdev/demo.py) starts the stack, then waits for the run's environment
(connections and variables: one JSON line on its stdin, never a command line), runs
the DAG once through Airflow's own `dag.test()` and writes {"run_id", "state"} to
RESULT_JSON. End of input without an environment means the parent's set-up failed:
no run, exit status 1.

This start is the critical path of `make demo`, so this module imports only the
standard library: the parent starts it before importing anything heavy itself.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
DAG_ID = "music_streaming_kpis"
INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT


def parse_dags() -> Any:
    """The DagBag of dags/ (parsing needs no metadata database: it may be made meanwhile)."""
    from include.music_kpis.airflow_compat import dag_bag

    dagbag = dag_bag(str(PROJECT_DIR / "dags"))
    if dagbag.import_errors:
        raise RuntimeError(f"DAG import errors: {dagbag.import_errors}")
    return dagbag


def run_dag(dagbag: Any | None = None, **test_args: Any) -> tuple[str, str]:
    """Run the DAG once through dag.test(**test_args) (dags/ parsed now unless given); returns
    (run_id, state)."""
    dagbag = dagbag or parse_dags()
    register_dags(dagbag)
    warm_execution_api()
    run = dagbag.get_dag(DAG_ID).test(**test_args)
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
    """Build the execution API that dag.test() talks to (one_execution_api), for the task SDK's
    API version only (only_the_task_sdk_api_version), before the run starts: its first request
    builds the routes, so building it here moves that work into the time the DAG's process
    waits for the stack. Once built, the same API serves every later call."""
    from airflow.sdk.execution_time import supervisor

    one_execution_api()
    import httpx

    with only_the_task_sdk_api_version():
        api = supervisor.in_process_api_server()
        httpx.Client(transport=api.transport, base_url="http://in-process").get("/health").raise_for_status()


@contextmanager
def only_the_task_sdk_api_version() -> Iterator[None]:
    """While the in-process execution API is built, its one client's API version is the only one.

    The API serves every version it has ever had (Cadwyn), making a copy of each route for
    each older version: ten versions on Airflow 3.3, about 3 s of CPU, the longest step of
    make demo's start. Its one client here is this process's task SDK, which names its own
    version in every request: the API's newest when both come from one install. Routes that
    exist only in older versions go with them. An install whose SDK speaks an older version
    gets every version.
    """
    from airflow.api_fastapi.execution_api import versions
    from airflow.api_fastapi.execution_api.routes import execution_api_router
    from airflow.sdk.api.datamodels._generated import API_VERSION
    from cadwyn import HeadVersion, Version, VersionBundle
    from cadwyn.route_generation import _DELETED_ROUTE_TAG  # how Cadwyn marks a route of older versions only

    every_version, every_route = versions.bundle, execution_api_router.routes
    if str(every_version.versions[0].value) != API_VERSION:
        yield
        return
    versions.bundle = VersionBundle(HeadVersion(), Version(API_VERSION))
    execution_api_router.routes = [
        route for route in every_route if _DELETED_ROUTE_TAG not in getattr(route, "tags", ())
    ]
    try:
        yield
    finally:
        versions.bundle, execution_api_router.routes = every_version, every_route


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


def run_when_handed_over(result: Path) -> int:
    """Parse the DAGs and build the execution API, then run the DAG in the environment the
    parent hands over on stdin. The parent reports an interruption, not this process."""
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


def main(argv: list[str] | None = None) -> int:
    (result,) = sys.argv[1:] if argv is None else argv
    code = run_when_handed_over(Path(result))
    # The interpreter's last garbage collection would walk Airflow's objects for seconds,
    # freeing nothing this process needs freed: exit handlers still run, the OS takes the rest.
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
