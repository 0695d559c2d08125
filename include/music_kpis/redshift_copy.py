"""Redshift COPY from Parquet, and the one rule S3ToRedshiftOperator does not enforce.

Redshift Database Developer Guide, "COPY from columnar data formats": with
FORMAT AS PARQUET, COPY accepts only ACCEPTINVCHARS, FILLRECORD, FROM, IAM_ROLE,
CREDENTIALS, STATUPDATE, MANIFEST and EXPLICIT_IDS; REGION is not supported (the
bucket must be in the database's region), and columns are matched by position.
S3ToRedshiftOperator adds ``region '<value>'`` to its COPY whenever its AWS
connection carries a ``region`` extra, so such a connection is refused before any
COPY runs.

When a COPY fails, ``log_load_errors`` (the mapped copy task's on_failure_callback) reads why from
SYS_LOAD_ERROR_DETAIL and writes the file, line, column and reason into the task's log.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC
from typing import Any

from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

from include.music_kpis.airflow_compat import AirflowFailException, BaseHook
from include.music_kpis.warehouse import SQL_DIR

log = logging.getLogger(__name__)
LOAD_ERRORS_SQL = "select_load_errors.sql"

COPY_OPTIONS = ["FORMAT AS PARQUET"]
COLUMNAR_COPY_PARAMETERS = frozenset(
    {"ACCEPTINVCHARS", "FILLRECORD", "FROM", "IAM_ROLE", "CREDENTIALS", "STATUPDATE", "MANIFEST", "EXPLICIT_IDS"}
)


def check_copy_connection(conn_id: str) -> None:
    """Fail with the reason when the COPY connection would make Redshift refuse the Parquet COPY."""
    extra = BaseHook.get_connection(conn_id).extra_dejson
    if "region" in extra:
        raise AirflowFailException(
            f"Connection {conn_id!r} has a 'region' extra ({extra['region']!r}). S3ToRedshiftOperator would add "
            "REGION to COPY ... FORMAT AS PARQUET, which Redshift rejects (REGION is not supported for columnar "
            "formats: the processed bucket must be in the warehouse's region). Remove the 'region' extra; keep "
            "only 'role_arn'."
        )


def log_load_errors(context: Any) -> None:
    """on_failure_callback of copy_to_staging on Redshift: the COPY's rejected lines, from SYS_LOAD_ERROR_DETAIL."""
    task, ti = context["task"], context["ti"]
    prefix = f"s3://{task.s3_bucket}/{task.s3_key}"  # what S3ToRedshiftOperator COPYs from
    pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
    since = ti.start_date.astimezone(UTC).replace(tzinfo=None)  # start_time is UTC without a zone
    try:
        hook = RedshiftSQLHook(redshift_conn_id=task.redshift_conn_id)
        rows = hook.get_records((SQL_DIR / LOAD_ERRORS_SQL).read_text(), parameters=(pattern, since))
    except Exception as error:  # a diagnosis must not hide the COPY's own error
        log.warning("COPY of %s failed; SYS_LOAD_ERROR_DETAIL could not be read: %s", prefix, error)
        return
    if not rows:
        log.error("COPY of %s failed; SYS_LOAD_ERROR_DETAIL has no line of it: the error above says why", prefix)
    for file_name, line, column, code, message in rows:
        log.error(
            "COPY of %s failed: file %s, line %s, column %s: %s (error code %s)",
            prefix,
            file_name,
            line,
            column,
            message,
            code,
        )
