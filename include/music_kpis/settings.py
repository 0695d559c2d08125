"""Every setting of the pipeline: connection ids, variables, defaults and allowed values.

Two kinds of setting, read at two moments:

- Deployment choices, fixed for an environment: the warehouse backend, where
  users and songs come from, the alerts topic and the task timeout. They shape the DAG, so they are read when the DAG
  file is parsed, from Airflow's configuration (section ``[music_kpis]``; the
  environment variables ``AIRFLOW__MUSIC_KPIS__BACKEND`` and
  ``AIRFLOW__MUSIC_KPIS__METADATA_SOURCE``; on Amazon MWAA the configuration
  options ``music_kpis.backend`` and ``music_kpis.metadata_source``). Reading
  configuration needs no metadata database and no secrets-backend call, and the
  DAG's shape changes only when the environment does.
- Run-time values: Airflow Variables, read when a task runs (``AIRFLOW_VAR_*``
  locally, AWS Secrets Manager on MWAA).

Connections hold where things are and how to reach them (README "Configuration").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# Airflow connections.
WAREHOUSE_CONN_ID = "music_kpis_warehouse"  # Redshift (PostgreSQL locally): every SQL step and the ledger
AWS_CONN_ID = "aws_default"  # S3 for the Python tasks
REDSHIFT_COPY_CONN_ID = "music_kpis_redshift_copy"  # its `role_arn` extra: the role Redshift COPY assumes
SOURCE_CONN_ID = "music_kpis_source"  # the operational PostgreSQL of users and tracks (rds_postgres)

CONFIG_SECTION = "music_kpis"


@dataclass(frozen=True)
class DeploymentSetting:
    """An Airflow configuration option of section [music_kpis], read when the DAG file is parsed."""

    option: str
    default: str

    @property
    def environment_variable(self) -> str:
        return f"AIRFLOW__{CONFIG_SECTION.upper()}__{self.option.upper()}"

    def read(self) -> str:
        from airflow.configuration import conf

        return conf.get(CONFIG_SECTION, self.option, fallback=self.default)


@dataclass(frozen=True)
class DeploymentChoice(DeploymentSetting):
    """A DeploymentSetting with a fixed set of allowed values."""

    allowed: tuple[str, ...] = ()

    def read(self) -> str:
        """The configured value, checked against the allowed ones."""
        value = super().read()
        if value not in self.allowed:
            raise ValueError(f"[{CONFIG_SECTION}] {self.option} must be one of {self.allowed}, not {value!r}")
        return value


BACKEND = DeploymentChoice("backend", "redshift", ("redshift", "postgres"))
METADATA_SOURCE = DeploymentChoice("metadata_source", "s3_csv", ("s3_csv", "rds_postgres"))
# The SNS topic that failure alerts and the rejected-files report go to; empty: nothing is sent.
ALERTS_TOPIC_ARN = DeploymentSetting("alerts_topic_arn", "")
# Every task's execution_timeout: a hung statement or read gives its worker slot back after this.
TASK_TIMEOUT_MINUTES = DeploymentSetting("task_timeout_minutes", "120")


def default_task_args() -> dict[str, Any]:
    """Every task's owner, retries and timeout (the DAGs' default_args).

    Retry delay: Airflow's [core] default_task_retry_delay (300 s unless configured).
    """
    timeout = timedelta(minutes=float(TASK_TIMEOUT_MINUTES.read()))
    return {"owner": "data-engineering", "retries": 2, "execution_timeout": timeout}


@dataclass(frozen=True)
class Variable:
    """An Airflow Variable the tasks read when they run."""

    name: str
    default: str | None = None

    @property
    def template(self) -> str:
        """The Jinja expression of its value, for templated operator fields."""
        return "{{ var.value." + self.name + " }}"

    def read(self) -> str:
        from airflow.sdk import Variable as AirflowVariable

        if self.default is None:
            return AirflowVariable.get(self.name)
        return AirflowVariable.get(self.name, default=self.default)


RAW_BUCKET = Variable("music_kpis_raw_bucket")
PROCESSED_BUCKET = Variable("music_kpis_processed_bucket")
REJECT_THRESHOLD = Variable("music_kpis_reject_threshold", "0.05")  # a larger share of bad rows rejects a file
READ_BLOCK_MB = Variable("music_kpis_read_block_mb", "4")  # CSV read block; a single row must fit in one


@dataclass(frozen=True)
class RuntimeSettings:
    """The Variables the tasks read when they run."""

    raw_bucket: str
    processed_bucket: str
    reject_threshold: float
    read_block_bytes: int

    @classmethod
    def from_variables(cls) -> RuntimeSettings:
        return cls(
            raw_bucket=RAW_BUCKET.read(),
            processed_bucket=PROCESSED_BUCKET.read(),
            reject_threshold=float(REJECT_THRESHOLD.read()),
            read_block_bytes=int(READ_BLOCK_MB.read()) << 20,
        )


# Where the KPI report and the KPI exports go in the processed bucket (docs/report.md).
REPORTS_PREFIX = "reports/"  # reports/runs/<run id>.html, one a run
REPORT_LATEST_KEY = f"{REPORTS_PREFIX}latest.html"  # the latest run's report, at a stable key
EXPORTS_PREFIX = "exports/"  # exports/<kpi table>.csv (exports.py)
