"""`make up` / `make run` / `make down`: the DAG run by a real Airflow (api-server,
scheduler with the LocalExecutor, dag-processor, triggerer, Task Execution API), not
dag.test(), driven through the same entry points a user types, with a state dir and
ports of the test's own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from localdev.local_stack import s3_client
from localdev.processes import free_port
from localdev.sample_data import generate
from tests.helpers.kpi_oracle import assert_kpis_equal, expected_tables, read_kpi_csv

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
SERVICES = ("postgres", "moto", "api-server", "scheduler", "dag-processor", "triggerer")


def entry_point(target: str, state: Path, **variables: str) -> list[str]:
    """`make <target> STATE=... VAR=...` with this interpreter's venv; without make (or
    outside a venv that make built), the command the Makefile target runs."""
    venv = Path(sys.prefix)
    if shutil.which("make") and (venv / "bin" / ".installed").exists():
        settings = [f"{name}={value}" for name, value in variables.items()]
        return ["make", "-s", "-C", str(PROJECT_DIR), target, f"VENV={venv}", f"STATE={state}", *settings]
    options = {"PORT": "--port", "DATA": "--data", "OUT": "--out"}
    command = [sys.executable, "-m", "localdev", "--state", str(state), target]
    for name, value in variables.items():
        command += [options[name], value]
    return command


def clean_env() -> dict[str, str]:
    """The user's environment, without the Airflow settings tests/conftest.py sets for dag.test()."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "WAREHOUSE_URL"}


def call(target: str, state: Path, timeout: float, **variables: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        entry_point(target, state, **variables),
        cwd=PROJECT_DIR,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(f"--- {target}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def stack_processes(state: Path) -> list[psutil.Process]:
    """Every process `make up` started (from its pid files) and everything they forked."""
    found = []
    for name in SERVICES:
        pid_file = state / "run" / f"{name}.pid"
        if not pid_file.exists():
            continue
        try:
            proc = psutil.Process(int(pid_file.read_text().split()[0]))
            found += [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return found


def is_alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening(port: int) -> bool:
    return any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in psutil.net_connections("tcp")
    )


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """Outside pytest's basetemp (mode 0700 under root, where the embedded PostgreSQL runs as
    its own user, and rotated away by a concurrent pytest run), like conftest's warehouse."""
    path = Path(tempfile.mkdtemp(prefix="music-kpis-make-up-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def raw_etags(moto_port: int) -> dict[str, str]:
    s3 = s3_client(f"http://127.0.0.1:{moto_port}")
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="music-streaming-raw").get("Contents", [])}


def test_make_up_run_down(tmp_path: Path, state_dir: Path) -> None:
    raw = tmp_path / "raw"
    generate(raw)
    state, out1, out2 = state_dir, tmp_path / "out1", tmp_path / "out2"
    port = free_port()
    try:
        up = call("up", state, 600, DATA=str(raw), PORT=str(port))
        assert up.returncode == 0, up.stderr
        config = json.loads((state / "run" / "stack.json").read_text())
        assert config["port"] == port
        assert f"http://127.0.0.1:{port}" in up.stdout

        # A login is needed; the generated password is printed once and kept only under STATE.
        passwords = state / "airflow-stack" / "passwords.json"
        password = json.loads(passwords.read_text())["admin"]
        assert f"password: {password}" in up.stdout
        assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/dags", timeout=10)
        assert denied.value.code in (401, 403)
        for log in (state / "logs").glob("*.log"):
            assert password not in log.read_text(errors="replace"), f"password written to {log}"
        # Loopback only, UI and S3 stand-in alike.
        for listen_port in (port, config["moto_port"]):
            addresses = {
                c.laddr.ip
                for c in psutil.net_connections("tcp")
                if c.laddr and c.laddr.port == listen_port and c.status == psutil.CONN_LISTEN
            }
            assert addresses == {"127.0.0.1"}, (listen_port, addresses)

        # Up again: nothing changes, and make demo (same pgdata) refuses while up.
        pids = {name: (state / "run" / f"{name}.pid").read_text() for name in SERVICES}
        again = call("up", state, 120, DATA=str(raw), PORT=str(port))
        assert again.returncode == 0 and "nothing changed" in again.stdout
        assert pids == {name: (state / "run" / f"{name}.pid").read_text() for name in SERVICES}
        guard = subprocess.run(
            [sys.executable, "-m", "localdev", "--state", str(state), "check-down"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
        )
        assert guard.returncode == 2 and "make down" in guard.stderr

        first = call("run", state, 1200, OUT=str(out1))
        assert first.returncode == 0, first.stderr
        assert "copy_to_staging[0]" in first.stdout and "refresh_kpis" in first.stdout  # task progress
        expected = expected_tables(raw)
        assert_kpis_equal(read_kpi_csv(out1 / "genre_kpis.csv"), expected.genre_kpis)
        assert_kpis_equal(read_kpi_csv(out1 / "hourly_kpis.csv"), expected.hourly_kpis)
        summary = json.loads((out1 / "run_summary.json").read_text())
        all_keys = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.csv"))
        assert summary["loaded_files"] == all_keys
        assert summary["streams_rows"] == len(expected.streams)

        second = call("run", state, 1200, OUT=str(out2))
        assert second.returncode == 0, second.stderr
        summary = json.loads((out2 / "run_summary.json").read_text())
        assert summary["loaded_files"] == [] and summary["skipped_files"] == all_keys
        assert (out2 / "genre_kpis.csv").read_text() == (out1 / "genre_kpis.csv").read_text()

        # A crash: the S3 stand-in (its buckets only in memory) and the scheduler die
        # without `make down`. `make up` cleans their pid files, starts them again with the
        # buckets restored from STATE/s3, ETags unchanged, and leaves the rest alone.
        etags = raw_etags(config["moto_port"])
        for name in ("moto", "scheduler"):
            pid = int(pids[name].split()[0])
            os.killpg(pid, signal.SIGKILL)
            psutil.wait_procs([psutil.Process(pid)], timeout=10)
        nothing = tmp_path / "nothing"  # no upload: the buckets must come from STATE/s3 alone
        nothing.mkdir()
        recovered = call("up", state, 600, DATA=str(nothing), PORT=str(port))
        assert recovered.returncode == 0, recovered.stderr
        assert "Restored" in recovered.stdout and "new ETag" not in recovered.stdout
        assert raw_etags(config["moto_port"]) == etags
        for name in ("postgres", "api-server", "dag-processor", "triggerer"):
            assert (state / "run" / f"{name}.pid").read_text() == pids[name], f"{name} was restarted"
        pids = {name: (state / "run" / f"{name}.pid").read_text() for name in SERVICES}

        started = stack_processes(state)
        assert {p.pid for p in started} >= {int(pids[name].split()[0]) for name in SERVICES}
    finally:
        down = call("down", state, 300)
    assert down.returncode == 0, down.stderr
    assert [p.pid for p in started if is_alive(p)] == []
    assert not listening(port) and not listening(config["moto_port"])
    assert list((state / "run").glob("*.pid")) == []
    # State stays: the buckets on disk (quarantine/ included), so make up continues incrementally.
    for key in all_keys:
        assert (state / "s3" / "music-streaming-raw" / key).read_bytes() == (raw / key).read_bytes()
    assert any((state / "s3" / "music-streaming-processed" / "transformed").rglob("*.parquet"))
