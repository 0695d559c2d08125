"""Shared fixtures: the real local stack (moto server + PostgreSQL) and Airflow.

Airflow reads its settings from the environment when first imported, so they
are set here, before any test module imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="music-kpis-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__MUSIC_KPIS__BACKEND": "postgres",
        "AIRFLOW__MUSIC_KPIS__METADATA_SOURCE": "s3_csv",
        # Retried tasks run again at once (fault-injection tests).
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "0",
    }
)
sys.path.insert(0, str(PROJECT_DIR))

from include.music_kpis.files import batch_id_for  # noqa: E402
from include.music_kpis.settings import METADATA_SOURCE, PROCESSED_BUCKET, RAW_BUCKET, SOURCE_CONN_ID  # noqa: E402
from localdev import dag_runner, outputs  # noqa: E402
from localdev.local_stack import (  # noqa: E402
    PostgresTarget,
    airflow_environment,
    connection_environment,
    create_buckets,
    moto_server,
    postgres_server,
    s3_client,
    upload_folder,
    variable_environment,
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresTarget]:
    """The embedded PostgreSQL (or WAREHOUSE_URL), for the whole session.

    Its data lives outside pytest's basetemp, which a concurrent pytest run may rotate away.
    """
    state = Path(tempfile.mkdtemp(prefix="music-kpis-warehouse-"))
    with postgres_server(state) as server:
        yield server
    shutil.rmtree(state, ignore_errors=True)


@contextmanager
def fresh_database(postgres: PostgresTarget) -> Iterator[PostgresTarget]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield postgres.create_database(name, drop_first=True)
    admin = postgres.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def warehouse(postgres: PostgresTarget) -> Iterator[PostgresTarget]:
    """A fresh, empty database for one test."""
    with fresh_database(postgres) as db:
        yield db


@pytest.fixture
def source_database(postgres: PostgresTarget) -> Iterator[PostgresTarget]:
    """A fresh, empty database standing in for the operational (RDS) PostgreSQL."""
    with fresh_database(postgres) as db:
        yield db


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's own metadata DB (SQLite), migrated once per session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL, env=os.environ
    )


@dataclass
class RunResult:
    run_id: str
    state: str
    summary: dict


@dataclass
class Stack:
    """One test's view of the local stack: its own buckets and warehouse database."""

    endpoint: str
    warehouse: PostgresTarget
    raw_bucket: str
    processed_bucket: str

    @classmethod
    def create(cls, endpoint: str, warehouse: PostgresTarget) -> Stack:
        suffix = uuid.uuid4().hex[:10]
        stack = cls(endpoint, warehouse, f"raw-{suffix}", f"processed-{suffix}")
        create_buckets(endpoint, stack.raw_bucket, stack.processed_bucket)
        return stack

    def activate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point the DAG's connections and variables at this stack."""
        env = airflow_environment(self.endpoint, self.warehouse)
        env[variable_environment(RAW_BUCKET.name)] = self.raw_bucket
        env[variable_environment(PROCESSED_BUCKET.name)] = self.processed_bucket
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    def use_rds_source(self, source: PostgresTarget, monkeypatch: pytest.MonkeyPatch) -> None:
        """Take users and tracks from ``source`` (metadata_source = rds_postgres)."""
        monkeypatch.setenv(connection_environment(SOURCE_CONN_ID), source.airflow_connection())
        monkeypatch.setenv(METADATA_SOURCE.environment_variable, "rds_postgres")

    def upload(self, folder: Path) -> list[str]:
        return upload_folder(self.endpoint, folder, self.raw_bucket)

    def put(self, key: str, body: str | bytes) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        s3_client(self.endpoint).put_object(Bucket=self.raw_bucket, Key=key, Body=data)

    def processed_keys(self, prefix: str = "") -> list[str]:
        return self._keys(self.processed_bucket, prefix)

    def raw_keys(self, prefix: str = "") -> list[str]:
        return self._keys(self.raw_bucket, prefix)

    def processed_object(self, key: str) -> str:
        return s3_client(self.endpoint).get_object(Bucket=self.processed_bucket, Key=key)["Body"].read().decode("utf-8")

    def raw_object(self, key: str) -> str:
        return s3_client(self.endpoint).get_object(Bucket=self.raw_bucket, Key=key)["Body"].read().decode("utf-8")

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        pages = s3_client(self.endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def run_dag(self) -> RunResult:
        run_id, state = dag_runner.run_dag()
        return RunResult(run_id, state, outputs.run_summary(self.warehouse, batch_id_for(run_id)))

    def query(self, statement: str, args: tuple = ()) -> list[tuple]:
        return outputs.query(self.warehouse, statement, args)

    def export(self, out_dir: Path) -> None:
        outputs.export_kpis(self.warehouse, out_dir)


@pytest.fixture
def stack(moto_endpoint: str, warehouse: PostgresTarget, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """Buckets and a database of this test's own, with the DAG's connections pointing at them."""
    stack = Stack.create(moto_endpoint, warehouse)
    stack.activate(monkeypatch)
    return stack


# Tests that start a real service (PostgreSQL, the S3 stand-in, Airflow's database) are
# integration tests wherever they live; `make test-unit` leaves them out.
_SERVICE_FIXTURES = {"stack", "warehouse", "source_database", "postgres", "moto_endpoint", "airflow_db"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's Airflow home (its SQLite database and logs) goes with the session."""
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
