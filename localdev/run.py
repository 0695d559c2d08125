"""`make run`: one DAG run through Airflow's REST API on the stack `make up` started,
each task's progress on the terminal, then OUT exactly as `make demo` writes it."""

from __future__ import annotations

import time
from pathlib import Path

from localdev.airflow_client import AirflowClient
from localdev.dag_runner import DAG_ID
from localdev.outputs import write_outputs
from localdev.stack import ADMIN_USERNAME, Paths, admin_password, require_up, save_buckets

FINISHED = {"success", "failed"}


def _label(ti: dict) -> str:
    index = ti.get("map_index", -1)
    return ti["task_id"] if index is None or index < 0 else f"{ti['task_id']}[{index}]"


def wait_for_run(client: AirflowClient, run_id: str, timeout: float, poll: float = 2.0) -> str:
    """Print each task instance's state when it changes; return the run's final state."""
    started = time.monotonic()
    seen: dict[str, str | None] = {}
    while True:
        run_state = client.dag_run(DAG_ID, run_id)["state"]
        for ti in sorted(client.task_instances(DAG_ID, run_id), key=lambda t: (t["task_id"], t.get("map_index", -1))):
            label, state = _label(ti), ti.get("state")
            # A task without a state has not been scheduled yet: nothing to show.
            if state and seen.get(label) != state:
                seen[label] = state
                print(f"  {time.monotonic() - started:6.1f}s  {label:<36} {state}", flush=True)
        if run_state in FINISHED:
            return run_state
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"DAG run {run_id} still {run_state} after {timeout:.0f}s (it keeps running)")
        time.sleep(poll)


def run(state: Path, out_dir: Path, timeout: float = 3600.0) -> int:
    paths = Paths(state.resolve())
    config = require_up(paths)
    password, _ = admin_password(paths)
    client = AirflowClient(config.url, ADMIN_USERNAME, password)
    client.set_paused(DAG_ID, False)
    run_id = client.trigger(DAG_ID)["dag_run_id"]
    print(f"Triggered {DAG_ID} run {run_id}; follow it at {config.url}/dags/{DAG_ID}", flush=True)
    final_state = wait_for_run(client, run_id, timeout)
    # Keep the buckets on disk after every run, so a crash loses no quarantine/ files.
    save_buckets(paths, config.moto_endpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    resume = "Run `make run` again to finish it (the next run picks up where this one stopped)."
    return write_outputs(config.warehouse, run_id, final_state, out_dir.resolve(), resume, config.moto_endpoint)
