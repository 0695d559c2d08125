"""Redshift COPY from Parquet, and the one rule S3ToRedshiftOperator does not enforce.

Redshift Database Developer Guide, "COPY from columnar data formats": with
FORMAT AS PARQUET, COPY accepts only ACCEPTINVCHARS, FILLRECORD, FROM, IAM_ROLE,
CREDENTIALS, STATUPDATE, MANIFEST and EXPLICIT_IDS; REGION is not supported (the
bucket must be in the database's region), and columns are matched by position.
S3ToRedshiftOperator adds ``region '<value>'`` to its COPY whenever its AWS
connection carries a ``region`` extra, so such a connection is refused before any
COPY runs.
"""

from __future__ import annotations

from include.music_kpis.airflow_compat import AirflowFailException, BaseHook

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
