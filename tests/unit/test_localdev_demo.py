"""make demo's DAG process builds Airflow's in-process execution API before the run
(localdev/demo.py, warm_execution_api), while the parent starts the stack."""

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

    reused = hasattr(supervisor.in_process_api_server, "cache_info")
    warm_execution_api()
    app = supervisor.in_process_api_server().app  # what dag.test() will get
    print(reused, any(getattr(route, "path", None) == "/health" for route in app.routes))
    """
)


def test_the_execution_api_dag_test_uses_is_built_before_the_run(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(PROJECT_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    reused, routes_built = done.stdout.split()[-2:]
    # Airflow 3.0 makes a new API for each run: there is nothing to build ahead.
    assert routes_built == reused
