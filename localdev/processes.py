"""Background processes that outlive the command that started them.

Each one has a pid file, ``<run dir>/<name>.pid``, holding its pid and its start
time. The start time is what tells our process from a stranger that got the same
pid after a crash or a reboot, so a stale pid file is recognised and removed and
no other program is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class PidFile:
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n{psutil.Process(pid).create_time()!r}\n", encoding="utf-8")

    def read(self) -> tuple[int, float] | None:
        try:
            pid_text, started_text = self.path.read_text(encoding="utf-8").split()[:2]
            return int(pid_text), float(started_text)
        except (FileNotFoundError, ValueError):
            return None

    def process(self) -> psutil.Process | None:
        """The recorded process when it is still the one we started, else None."""
        recorded = self.read()
        if recorded is None:
            return None
        pid, started = recorded
        try:
            proc = psutil.Process(pid)
            # create_time is stable to the jiffy; a reused pid starts later.
            if abs(proc.create_time() - started) > 0.05 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return proc

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def start(
    name: str, command: Sequence[str], *, env: Mapping[str, str], log_dir: Path, run_dir: Path, cwd: Path
) -> psutil.Process:
    """Start command detached (own session, so Ctrl-C in the terminal and the end of
    `make up` leave it running), output appended to <log_dir>/<name>.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as log:
        popen = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PidFile(run_dir / f"{name}.pid").write(popen.pid)
    return psutil.Process(popen.pid)


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members


def stop(pid_file: PidFile, *, timeout: float = 30.0) -> str:
    """SIGTERM the recorded process, wait, then SIGKILL whatever is left of its process
    group (the executor's and api-server's workers). Returns what was done."""
    proc = pid_file.process()
    if proc is None:
        pid_file.remove()
        return "not running"
    # Started with start_new_session, so its pid is its process group id: the group holds
    # exactly the processes it forked, and Linux never hands that id to a new process
    # while the group exists.
    group = proc.pid
    with contextlib.suppress(psutil.Error):
        proc.terminate()
    try:
        proc.wait(timeout)
        outcome = "stopped"
    except psutil.TimeoutExpired:
        outcome = f"killed after {timeout:.0f}s"
    leftovers = _group_members(group)
    for member in leftovers:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=5)
    for member in [*alive, proc]:
        with contextlib.suppress(psutil.Error):
            member.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    pid_file.remove()
    return outcome


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_owner(port: int) -> str:
    """Who listens on port, as far as this user may know: 'pid 123 (nginx)' or 'another program'."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                with contextlib.suppress(psutil.Error):
                    return f"pid {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline()[:3])})"
                return f"pid {conn.pid}"
    return "another program"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
