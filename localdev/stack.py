"""`make up` / `make down` / `make upload`: the local stack and a real Airflow as
background processes, state under STATE (default .local/).

    STATE/pgdata/              embedded PostgreSQL: warehouse `music_kpis` (shared with
                               `make demo`) and Airflow's metadata database `airflow`
    STATE/airflow-stack/       AIRFLOW_HOME of these processes: task logs, passwords.json
    STATE/s3/<bucket>/<key>    the buckets, kept while the stack is down (moto is in memory)
    STATE/run/<name>.pid       pid and start time of each process `make up` started
    STATE/run/stack.json       the ports chosen by `make up`
    STATE/logs/<name>.log      each process's output
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from include.music_kpis.settings import METADATA_SOURCE
from localdev import processes
from localdev.airflow_client import AirflowAPIError, AirflowClient, is_answering
from localdev.dag_runner import DAG_ID, PROJECT_DIR
from localdev.demo import WAREHOUSE_DATABASE
from localdev.local_stack import (
    PROCESSED_BUCKET_NAME,
    RAW_BUCKET_NAME,
    PostgresTarget,
    airflow_environment,
    create_buckets,
    s3_client,
    start_embedded_postgres,
    stop_embedded_postgres,
    upload_folder,
)
from localdev.processes import PidFile

HOST = "127.0.0.1"
AIRFLOW_DATABASE = "airflow"
ADMIN_USERNAME = "admin"
# Started in this order, stopped in the reverse one.
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
SERVICES = ("postgres", "moto", *AIRFLOW_SERVICES)
BUCKETS = (RAW_BUCKET_NAME, PROCESSED_BUCKET_NAME)
INIT_SCRIPT = PROJECT_DIR / "docker" / "airflow-init.sh"


class StackError(RuntimeError):
    """A condition the user has to resolve; the message says how."""


@dataclass(frozen=True)
class Paths:
    state: Path

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow-stack"

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "passwords.json"

    @property
    def secrets_file(self) -> Path:
        return self.airflow_home / "secrets.json"

    @property
    def s3(self) -> Path:
        return self.state / "s3"

    @property
    def config_file(self) -> Path:
        return self.run / "stack.json"

    def pid_file(self, name: str) -> PidFile:
        return PidFile(self.run / f"{name}.pid")


@dataclass(frozen=True)
class StackConfig:
    """What `make up` chose; the later commands reach the stack through it."""

    port: int
    moto_port: int
    pg_host: str
    pg_port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def moto_endpoint(self) -> str:
        return f"http://{HOST}:{self.moto_port}"

    @property
    def server(self) -> PostgresTarget:
        return PostgresTarget(self.pg_host, self.pg_port, "postgres", "", "postgres")

    @property
    def warehouse(self) -> PostgresTarget:
        return self.server.with_database(WAREHOUSE_DATABASE)

    def save(self, paths: Paths) -> None:
        paths.run.mkdir(parents=True, exist_ok=True)
        paths.config_file.write_text(json.dumps(self.__dict__, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, paths: Paths) -> StackConfig | None:
        try:
            return cls(**json.loads(paths.config_file.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError, TypeError):
            return None


@contextlib.contextmanager
def locked(paths: Paths) -> Iterator[None]:
    """One up/down/upload at a time per state dir."""
    paths.run.mkdir(parents=True, exist_ok=True)
    with (paths.run / "lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"Another make up/down/upload is running on {paths.state}; wait for it.") from None
        yield


def running(paths: Paths) -> dict[str, psutil.Process]:
    """The processes of the stack that are alive and are the ones `make up` started."""
    alive = {}
    for name in SERVICES:
        proc = paths.pid_file(name).process()
        if proc is not None:
            alive[name] = proc
    return alive


def forget_stale_pid_files(paths: Paths) -> list[str]:
    """Remove pid files whose process is gone or is now another program (after a crash or reboot)."""
    stale = []
    for name in SERVICES:
        pid_file = paths.pid_file(name)
        if pid_file.read() is not None and pid_file.process() is None:
            pid_file.remove()
            stale.append(name)
    return stale


def refuse_while_up(state: Path, action: str) -> None:
    """For `make demo` and `make demo-reset`: they use the same STATE/pgdata."""
    alive = running(Paths(state))
    if alive:
        names = ", ".join(f"{name} (pid {proc.pid})" for name, proc in alive.items())
        raise StackError(f"The local Airflow stack is up ({names}); run `make down` first, then `{action}`.")


# --- secrets -------------------------------------------------------------------------------------


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    path.chmod(0o600)


def admin_password(paths: Paths) -> tuple[str, bool]:
    """The admin's password from the passwords file, generated on first use; (password, new)."""
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        return json.loads(paths.passwords_file.read_text(encoding="utf-8"))[ADMIN_USERNAME], False
    password = secrets.token_urlsafe(18)
    _write_private(paths.passwords_file, json.dumps({ADMIN_USERNAME: password}) + "\n")
    return password, True


def component_secrets(paths: Paths) -> dict[str, str]:
    """The JWT signing secret every Airflow component must share, and the api-server's
    session key; generated once, kept in a 0600 file, passed through the environment."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return json.loads(paths.secrets_file.read_text(encoding="utf-8"))
    # 64 bytes: the HMAC key length RFC 7518 asks for with SHA-512.
    values = {"jwt_secret": secrets.token_urlsafe(64), "api_secret_key": secrets.token_urlsafe(32)}
    _write_private(paths.secrets_file, json.dumps(values) + "\n")
    return values


# --- environment -----------------------------------------------------------------------------------


def airflow_env(paths: Paths, config: StackConfig) -> dict[str, str]:
    """The environment of every Airflow process: their own settings plus, exactly as
    `make demo` sets them, the DAG's connections and variables."""
    keys = component_secrets(paths)
    server = config.server
    metadata_url = f"postgresql+psycopg2://{server.user}@/{AIRFLOW_DATABASE}?host={server.host}&port={server.port}"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
        "AIRFLOW_HOME": str(paths.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # Task workers call the api-server's Task Execution API; the default is localhost:8080.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.url}/execution/",
        "AIRFLOW__API__BASE_URL": config.url,
        # A laptop, not a fleet: one uvicorn worker (default 4), and no more tasks at once
        # than cores (default 32): every task process imports pyarrow and the providers
        # (and then pandas too), and a dozen of them importing at once on two cores took
        # longer than the 30 s DagBag import timeout, which then failed the tasks (hence
        # also 120 s).
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__PARALLELISM": str(max(2, os.cpu_count() or 2)),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        # Airflow 3.0 signs tokens with iss=None when unset, which PyJWT >= 2.10 refuses
        # (POST /auth/token answers 500); any fixed string will do.
        "AIRFLOW__API_AUTH__JWT_ISSUER": "music-kpis-localdev",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.passwords_file),
        # Runs start only when asked (make run, or Trigger in the UI): the DAG's @daily
        # schedule would otherwise start one as soon as it is unpaused.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "PYTHONDONTWRITEBYTECODE": "1",
        **airflow_environment(config.moto_endpoint, config.warehouse),
        METADATA_SOURCE.environment_variable: "s3_csv",
    }
    return env


def airflow_command(service: str, config: StackConfig) -> list[str]:
    command = [sys.executable, "-m", "airflow", service]
    if service == "api-server":
        command += ["--host", HOST, "--port", str(config.port)]
    return command


# --- buckets ---------------------------------------------------------------------------------------


def _manifest_path(paths: Paths) -> Path:
    return paths.s3 / "etags.json"


def save_buckets(paths: Paths, endpoint: str) -> int:
    """Copy both buckets to STATE/s3/<bucket>/<key> (only objects whose ETag changed) and
    record each ETag; returns how many objects were written."""
    s3 = s3_client(endpoint)
    try:
        old = json.loads(_manifest_path(paths).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        old = {}
    new: dict[str, dict[str, str]] = {}
    written = 0
    for bucket in BUCKETS:
        root = (paths.s3 / bucket).resolve()
        new[bucket] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key, etag = obj["Key"], obj["ETag"]
                target = (root / key).resolve()
                if key.endswith("/") or not target.is_relative_to(root):
                    continue  # folder markers and keys that are no file path
                new[bucket][key] = etag
                if old.get(bucket, {}).get(key) != etag or not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(target))
                    written += 1
        for key in set(old.get(bucket, {})) - set(new[bucket]):
            (root / key).unlink(missing_ok=True)
    paths.s3.mkdir(parents=True, exist_ok=True)
    tmp = _manifest_path(paths).with_suffix(".tmp")
    tmp.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(_manifest_path(paths))
    return written


def restore_buckets(paths: Paths, endpoint: str) -> tuple[int, list[str]]:
    """Upload STATE/s3 back into a fresh moto; returns (objects, keys whose ETag changed).

    moto's ETag of an object uploaded with boto3's upload_file is the MD5 of the bytes
    (multipart above 8 MB: MD5 of the part MD5s), so the same bytes uploaded the same way
    get the same ETag and the ledger keeps skipping them."""
    try:
        manifest = json.loads(_manifest_path(paths).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return 0, []
    s3 = s3_client(endpoint)
    count, changed = 0, []
    for bucket, objects in manifest.items():
        for key, etag in objects.items():
            path = paths.s3 / bucket / key
            if not path.is_file():
                continue
            s3.upload_file(str(path), bucket, key)
            count += 1
            if s3.head_object(Bucket=bucket, Key=key)["ETag"] != etag:
                changed.append(f"{bucket}/{key}")
    return count, changed


# --- up ----------------------------------------------------------------------------------------------


def _check_port_free(port: int, what: str, hint: str) -> None:
    if not processes.port_is_free(port, HOST):
        raise StackError(f"Port {port} on {HOST} ({what}) is in use by {processes.port_owner(port)}. {hint}")


def _start_postgres(paths: Paths) -> PostgresTarget:
    pgdata = paths.state / "pgdata"
    info_file = pgdata / "postmaster.pid"
    if info_file.exists() and paths.pid_file("postgres").process() is None:
        with contextlib.suppress(ValueError, psutil.Error):
            pid = int(info_file.read_text().split()[0])
            if psutil.pid_exists(pid) and str(pgdata.resolve()) in " ".join(psutil.Process(pid).cmdline()):
                raise StackError(
                    f"The PostgreSQL of {pgdata} is running but was not started by `make up` (pid {pid}; "
                    "a `make demo` or a test?). Let it finish, then run `make up` again."
                )
    target, pid = start_embedded_postgres(paths.state)
    paths.pid_file("postgres").write(pid)
    target.create_database(WAREHOUSE_DATABASE)
    target.create_database(AIRFLOW_DATABASE)
    return target


def _start_moto(paths: Paths, port: int) -> None:
    proc = processes.start(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        env=dict(os.environ),
        log_dir=paths.logs,
        run_dir=paths.run,
        cwd=paths.state,
    )
    url = f"http://{HOST}:{port}/moto-api/"
    if not processes.wait_until(lambda: is_answering(url) or not proc.is_running(), 60) or not proc.is_running():
        raise StackError(f"The S3 stand-in (moto) did not start; see {paths.logs / 'moto.log'}")


def _run_airflow_init(paths: Paths, env: dict[str, str], password: str) -> None:
    """docker/airflow-init.sh, the script docker-compose's airflow-init runs: migrate the
    metadata database, write the admin's password file. No chown here (AIRFLOW_RUN_AS empty)."""
    init_env = {**env, "AIRFLOW_ADMIN_USERNAME": ADMIN_USERNAME, "AIRFLOW_ADMIN_PASSWORD": password}
    init_env["AIRFLOW_RUN_AS"] = ""
    paths.logs.mkdir(parents=True, exist_ok=True)
    with (paths.logs / "airflow-init.log").open("ab") as log:
        result = subprocess.run(["bash", str(INIT_SCRIPT)], env=init_env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise StackError(f"Airflow init failed; see {paths.logs / 'airflow-init.log'}")


def _wait_for_dag(paths: Paths, config: StackConfig, password: str, timeout: float) -> AirflowClient:
    """Wait for the UI to answer and the DAG to be parsed; fail early on an import error."""
    deadline = time.monotonic() + timeout
    health = f"{config.url}/api/v2/monitor/health"
    while not is_answering(health):
        dead = [name for name in AIRFLOW_SERVICES if paths.pid_file(name).process() is None]
        if dead:
            raise StackError(f"Airflow {', '.join(dead)} exited; see {paths.logs}/<name>.log")
        if time.monotonic() > deadline:
            raise StackError(f"The api-server did not answer at {health}; see {paths.logs / 'api-server.log'}")
        time.sleep(1)
    client = AirflowClient(config.url, ADMIN_USERNAME, password)
    while True:
        try:
            client.dag(DAG_ID)
            return client
        except AirflowAPIError as error:
            if error.status != 404:
                raise
        errors = [e for e in client.import_errors() if "music_streaming_kpis" in e.get("filename", "")]
        if errors:
            raise StackError(f"The DAG does not import:\n{errors[0].get('stack_trace', errors[0])}")
        if time.monotonic() > deadline:
            raise StackError(f"The DAG was not parsed within {timeout:.0f}s; see {paths.logs / 'dag-processor.log'}")
        time.sleep(2)


def up(state: Path, port: int, data: Path | None, timeout: float = 300.0) -> int:
    paths = Paths(state.resolve())
    if os.environ.get("WAREHOUSE_URL"):
        raise StackError("`make up` runs its own embedded PostgreSQL; unset WAREHOUSE_URL.")
    paths.state.mkdir(parents=True, exist_ok=True)
    with locked(paths):
        config = StackConfig.load(paths)
        stale = forget_stale_pid_files(paths)
        alive = running(paths)
        if stale:
            print(f"Cleaned up after an earlier stop without `make down`: {', '.join(stale)} no longer running.")
        if config and set(alive) == set(SERVICES):
            if port != config.port:
                print(f"Already up on port {config.port}; to change it: make down && make up PORT={port}")
            print(f"Already up: nothing changed.\n{_banner(paths, config, None)}")
            return 0
        if alive:
            # A partial stack (a process died): keep its ports, start what is missing.
            if config is None:
                raise StackError(f"{paths.config_file} is missing; run `make down`, then `make up`.")
            port = config.port
            print(f"Partly up ({', '.join(alive)}); starting the rest.")
        if "api-server" not in alive:
            _check_port_free(port, "the Airflow UI", f"Choose another: make up PORT={port + 1}")

        target = _start_postgres(paths) if "postgres" not in alive else config.server  # type: ignore[union-attr]
        moto_port = config.moto_port if config else 0
        if "moto" not in alive and (not moto_port or not processes.port_is_free(moto_port, HOST)):
            moto_port = processes.free_port()
        previous = config
        config = StackConfig(port=port, moto_port=moto_port, pg_host=target.host, pg_port=target.port)
        if previous is not None and previous != config:
            # Running Airflow processes have the old endpoints in their environment.
            for name in AIRFLOW_SERVICES:
                if alive.pop(name, None) is not None:
                    outcome = processes.stop(paths.pid_file(name))
                    print(f"Restarting {name} ({outcome}): the S3 stand-in or PostgreSQL moved")
        config.save(paths)
        if "moto" not in alive:
            _start_moto(paths, moto_port)
            create_buckets(config.moto_endpoint, *BUCKETS)
            restored, changed = restore_buckets(paths, config.moto_endpoint)
            if restored:
                print(f"Restored {restored} object(s) of the buckets from {paths.s3}")
            if changed:
                print(f"{len(changed)} object(s) got a new ETag and will be processed again: {changed[:5]}")

        password, new_password = admin_password(paths)
        env = airflow_env(paths, config)
        missing = [name for name in AIRFLOW_SERVICES if name not in alive]
        if missing:
            print("Migrating Airflow's metadata database ...", flush=True)
            _run_airflow_init(paths, env, password)
        for name in missing:
            processes.start(
                name,
                airflow_command(name, config),
                env=env,
                log_dir=paths.logs,
                run_dir=paths.run,
                cwd=paths.state,
            )
        print(f"Waiting for the Airflow UI at {config.url} and the DAG {DAG_ID} ...", flush=True)
        client = _wait_for_dag(paths, config, password, timeout)
        # Unpaused, it still runs only when triggered: use_job_schedule is off.
        client.set_paused(DAG_ID, False)

        if data is not None:
            uploaded = upload_folder(config.moto_endpoint, data, RAW_BUCKET_NAME)
            print(f"Uploaded {len(uploaded)} raw file(s) from {data} to s3://{RAW_BUCKET_NAME}")
        save_buckets(paths, config.moto_endpoint)
        print(_banner(paths, config, password if new_password else None))
    return 0


def _banner(paths: Paths, config: StackConfig, new_password: str | None) -> str:
    lines = [
        f"Airflow UI: {config.url}  (user {ADMIN_USERNAME})",
        f"  password: {new_password}  (shown once; kept in {paths.passwords_file})"
        if new_password
        else f"  password: in {paths.passwords_file}",
        f"  S3 stand-in (moto): {config.moto_endpoint}  buckets {RAW_BUCKET_NAME}, {PROCESSED_BUCKET_NAME}",
        f"  logs: {paths.logs}",
        "Next: make run   (or Trigger in the UI); make upload DATA=path; make down",
    ]
    return "\n".join(lines)


# --- upload, down ----------------------------------------------------------------------------------


def require_up(paths: Paths) -> StackConfig:
    config = StackConfig.load(paths)
    alive = running(paths)
    if config is None or set(alive) != set(SERVICES):
        down_names = [name for name in SERVICES if name not in alive]
        if not alive:
            raise StackError("The local Airflow stack is not up; start it with `make up`.")
        raise StackError(f"The local Airflow stack is only partly up ({', '.join(down_names)} down); run `make up`.")
    return config


def upload(state: Path, data: Path) -> int:
    paths = Paths(state.resolve())
    with locked(paths):
        config = require_up(paths)
        uploaded = upload_folder(config.moto_endpoint, data, RAW_BUCKET_NAME)
        save_buckets(paths, config.moto_endpoint)
    print(f"Uploaded {len(uploaded)} raw file(s) from {data} to s3://{RAW_BUCKET_NAME}")
    return 0


def down(state: Path) -> int:
    paths = Paths(state.resolve())
    with locked(paths):
        config = StackConfig.load(paths)
        alive = running(paths)
        if not alive:
            stale = forget_stale_pid_files(paths)
            note = f" (removed stale pid files: {', '.join(stale)})" if stale else ""
            print(f"The local Airflow stack is not up{note}.")
            return 0
        if config is not None and "moto" in alive:
            # Stopping must not depend on it: a failure is reported, the processes still stop.
            try:
                written = save_buckets(paths, config.moto_endpoint)
                print(f"Saved the buckets to {paths.s3} ({written} object(s) written)")
            except Exception as error:  # any failure: stopping the processes below matters more
                print(f"warning: the buckets were not saved to {paths.s3}: {error}", file=sys.stderr)
        for name in reversed(SERVICES):
            pid_file = paths.pid_file(name)
            if name == "postgres" and pid_file.process() is not None:
                # On failure processes.stop below signals the recorded pid instead.
                with contextlib.suppress(subprocess.CalledProcessError):
                    stop_embedded_postgres(paths.state)
            outcome = processes.stop(pid_file)
            if name == "postgres" and outcome == "not running":
                outcome = "stopped"
            print(f"{name}: {outcome}")
    return 0


def status(state: Path) -> int:
    """Print each process of the stack and the UI's address when up."""
    paths = Paths(state.resolve())
    alive = running(paths)
    for name in SERVICES:
        proc = alive.get(name)
        print(f"{name:<14} {'up (pid ' + str(proc.pid) + ')' if proc else 'down'}")
    config = StackConfig.load(paths)
    if config and alive:
        print(f"Airflow UI: {config.url}")
    return 0
