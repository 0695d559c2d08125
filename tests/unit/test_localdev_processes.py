"""localdev's process bookkeeping and its refusals, without starting the stack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from localdev import processes
from localdev.processes import PidFile
from tests.conftest import PROJECT_DIR


def localdev(state: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "WAREHOUSE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "localdev", "--state", str(state), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pid_file_of_a_live_process_is_ours(tmp_path):
    pid_file = PidFile(tmp_path / "me.pid")
    pid_file.write(os.getpid())
    assert pid_file.process().pid == os.getpid()


def test_reused_pid_is_not_ours_and_is_never_signalled(tmp_path):
    """After a reboot the recorded pid may belong to another program: its start time differs."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = PidFile(tmp_path / "scheduler.pid")
        started = psutil.Process(stranger.pid).create_time()
        pid_file.path.write_text(f"{stranger.pid}\n{started - 3600!r}\n")
        assert pid_file.process() is None
        assert processes.stop(pid_file) == "not running"
        assert not pid_file.path.exists()
        assert stranger.poll() is None, "a process we did not start was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_ends_the_process_and_what_it_forked(tmp_path):
    parent = processes.start(
        "family",
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)']); time.sleep(60)",
        ],
        env=dict(os.environ),
        log_dir=tmp_path / "logs",
        run_dir=tmp_path / "run",
        cwd=tmp_path,
    )
    assert processes.wait_until(lambda: len(parent.children()) == 1, 10)
    child = parent.children()[0]
    assert processes.stop(PidFile(tmp_path / "run" / "family.pid"), timeout=5) == "stopped"
    for proc in (parent, child):
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "run" / "family.pid").exists()


def test_up_names_the_program_on_its_port_and_how_to_choose_another(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = localdev(tmp_path / "state", "up", "--port", str(port))
    assert result.returncode == 2
    assert f"Port {port} on 127.0.0.1" in result.stderr and f"PORT={port + 1}" in result.stderr
    assert not list((tmp_path / "state" / "run").glob("*.pid")), "nothing may be started"


def test_commands_that_need_the_stack_say_so(tmp_path):
    for args in (("run",), ("upload", "--data", str(PROJECT_DIR / "data" / "sample"))):
        result = localdev(tmp_path / "state", *args)
        assert result.returncode == 2 and "make up" in result.stderr, args
    down = localdev(tmp_path / "state", "down")
    assert down.returncode == 0 and "not up" in down.stdout
    assert localdev(tmp_path / "state", "check-down").returncode == 0


def test_stale_pid_files_are_cleaned_by_down(tmp_path):
    run = tmp_path / "state" / "run"
    run.mkdir(parents=True)
    (run / "scheduler.pid").write_text(f"{os.getpid()}\n{time.time() - 10**6!r}\n")
    result = localdev(tmp_path / "state", "down")
    assert result.returncode == 0 and "scheduler" in result.stdout
    assert not (run / "scheduler.pid").exists()
