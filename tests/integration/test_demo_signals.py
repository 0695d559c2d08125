"""`make demo` stops cleanly on Ctrl-C or SIGTERM in the middle of a run: within
STOP_SECONDS, with exit status 130, a message saying how to resume, and no
PostgreSQL or DAG process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
STOP_SECONDS = 30
# After the upload the DAG's child process is running tasks.
SIGNAL_AFTER = "Uploaded "


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-state")  # shared: Airflow's DB is migrated once


def _postgres_of(state: Path) -> list[psutil.Process]:
    pgdata = str(state / "pgdata")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(pgdata in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.parametrize(
    ("signum", "whole_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],  # SIGINT to the group: what Ctrl-C in a terminal does
    ids=["sigterm", "ctrl-c"],
)
def test_demo_stops_cleanly_mid_run(state_dir: Path, tmp_path: Path, signum: int, whole_group: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WAREHOUSE_URL"}
    data, out = PROJECT_DIR / "data" / "sample", tmp_path / "out"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localdev.demo",
            "--data",
            str(data),
            "--out",
            str(out),
            "--state",
            str(state_dir),
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    uploaded = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if line.startswith(SIGNAL_AFTER):
                uploaded.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert uploaded.wait(180), "".join(output)
        time.sleep(3)  # tasks are running in the DAG's process
        assert demo.poll() is None, "the demo ended before it could be interrupted:\n" + "".join(output)
        children = psutil.Process(demo.pid).children(recursive=True)
        assert _postgres_of(state_dir), "PostgreSQL should be running mid-run"
        started = time.monotonic()
        if whole_group:
            os.killpg(demo.pid, signum)
        else:
            demo.send_signal(signum)
        code = demo.wait(STOP_SECONDS)
        stopped_in = time.monotonic() - started
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        reader.join(10)
    text = "".join(output)
    assert code == 130, text
    assert stopped_in < STOP_SECONDS
    assert (
        text.count("Stopped:") == 1
        and f"Run `make demo` again (same DATA) to resume: the state is in {state_dir}" in text
    ), text
    assert _postgres_of(state_dir) == [], text
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == [], text
