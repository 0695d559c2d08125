"""dag.test() gets one in-process execution API per process, on Airflow 3.0 as from 3.1
(localdev/dag_runner.py, one_execution_api), and make demo's DAG process builds it before the
run (warm_execution_api), while the parent starts the stack, for the task SDK's API version
only (only_the_task_sdk_api_version), with no garbage collection walking what that start-up
made (start_up_objects_kept)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.helpers.fresh_interpreter import printed_words

CHECK = textwrap.dedent(
    """
    from airflow.sdk.execution_time import supervisor
    from localdev.dag_runner import warm_execution_api

    warm_execution_api()
    app = supervisor.in_process_api_server().app  # what dag.test() will get, for every task
    print(supervisor.in_process_api_server() is supervisor.in_process_api_server(),
          any(getattr(route, "path", None) == "/health" for route in app.routes))
    """
)


def test_dag_test_gets_one_execution_api_built_before_the_run(tmp_path: Path) -> None:
    # Airflow 3.0 would build a new API (3-4 s of CPU) for each task instance.
    assert printed_words(CHECK, AIRFLOW_HOME=str(tmp_path))[-2:] == ["True", "True"]


SDK_VERSION_ONLY = textwrap.dedent(
    """
    import httpx
    from airflow.api_fastapi.execution_api import versions
    from airflow.api_fastapi.execution_api.routes import execution_api_router
    from airflow.sdk.api.datamodels._generated import API_VERSION
    from airflow.sdk.execution_time import supervisor
    from localdev.dag_runner import warm_execution_api

    every_version, every_route = versions.bundle, execution_api_router.routes
    warm_execution_api()
    api = supervisor.in_process_api_server()
    client = httpx.Client(transport=api.transport, base_url="http://in-process")

    def answer(version):
        response = client.get("/variables/no_such_variable", headers={"Airflow-API-Version": version})
        return response.status_code, str(response.json()["detail"])

    served = [str(version.value) for version in api.app.versions.versions]
    status, detail = answer(API_VERSION)
    older = [str(v.value) for v in every_version.versions if str(v.value) != API_VERSION]
    unserved = answer(older[0]) if older else (404, "Not Found")
    print(served == [API_VERSION], status, "not_found" in detail, unserved == (404, "Not Found"),
          versions.bundle is every_version, execution_api_router.routes is every_route)
    """
)


def test_the_execution_api_serves_the_task_sdk_version_only_and_the_modules_are_restored(
    tmp_path: Path,
) -> None:
    # Routes for every older API version are a copy each (about 3 s on Airflow 3.3); the SDK's
    # requests reach the routes (a missing variable: the route's own 404), older versions are
    # not served, and Airflow's modules are as they were for anything built later.
    assert printed_words(SDK_VERSION_ONLY, AIRFLOW_HOME=str(tmp_path))[-6:] == [
        "True",
        "404",
        "True",
        "True",
        "True",
        "True",
    ]


START_UP = textwrap.dedent(
    """
    import gc
    from localdev.dag_runner import start_up_objects_kept

    collections = []
    gc.callbacks.append(lambda phase, info: collections.append(info["generation"]))
    with start_up_objects_kept():
        during = gc.isenabled()
        made = [[index] for index in range(200_000)]  # far past every generation's threshold
        during_collections = len(collections)
    frozen = gc.get_freeze_count()
    print(during, during_collections, gc.isenabled(), frozen >= len(made))
    """
)


def test_start_up_runs_no_collection_and_freezes_what_it_made() -> None:
    # No collection while the start-up's objects pile up; the run's tasks collect again,
    # without walking them (frozen).
    assert printed_words(START_UP)[-4:] == ["False", "0", "True", "True"]
