"""dag.test() gets one in-process execution API per process, on Airflow 3.0 as from 3.1
(localdev/demo.py, one_execution_api), and make demo's DAG process builds it before the
run (warm_execution_api), while the parent starts the stack."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]

CHECK = textwrap.dedent(
    """
    from airflow.sdk.execution_time import supervisor
    from localdev.demo import warm_execution_api

    warm_execution_api()
    app = supervisor.in_process_api_server().app  # what dag.test() will get, for every task
    print(supervisor.in_process_api_server() is supervisor.in_process_api_server(),
          any(getattr(route, "path", None) == "/health" for route in app.routes))
    """
)


def test_dag_test_gets_one_execution_api_built_before_the_run(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(PROJECT_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    # Airflow 3.0 would build a new API (3-4 s of CPU) for each task instance.
    assert done.stdout.split()[-2:] == ["True", "True"]
