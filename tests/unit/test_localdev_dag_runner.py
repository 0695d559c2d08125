"""dag.test() gets one in-process execution API per process, on Airflow 3.0 as from 3.1
(localdev/dag_runner.py, one_execution_api), and make demo's DAG process builds it before the
run (warm_execution_api), while the parent starts the stack, with no garbage collection
walking what that start-up made (start_up_objects_kept)."""

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
