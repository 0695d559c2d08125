"""On Redshift, export_kpis leaves each KPI CSV at its stable key, moved there from the file UNLOAD wrote."""

from __future__ import annotations

import json

import pytest
from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from include.music_kpis.exports import UNLOAD_OPTIONS, export_jobs
from include.music_kpis.operators import KpiUnloadOperator
from include.music_kpis.settings import AWS_CONN_ID, REDSHIFT_COPY_CONN_ID, WAREHOUSE_CONN_ID

pytestmark = pytest.mark.integration


def test_unloaded_file_is_moved_to_its_stable_key(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    role = {"conn_type": "aws", "extra": {"role_arn": "arn:aws:iam::123456789012:role/music-kpis-copy"}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{REDSHIFT_COPY_CONN_ID.upper()}", json.dumps(role))
    job = export_jobs("redshift")[0]
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID)
    s3.load_string("stale", job["export_key"], bucket_name=stack.processed_bucket)

    def unload(self, sql, autocommit=False, **kwargs) -> None:  # what Redshift's UNLOAD ... PARALLEL OFF writes
        s3.load_string("listen_date\n2026-01-01\n", job["s3_key"] + "000.csv", bucket_name=stack.processed_bucket)

    monkeypatch.setattr(RedshiftSQLHook, "run", unload)
    operator = KpiUnloadOperator(
        task_id="export_kpis",
        redshift_conn_id=WAREHOUSE_CONN_ID,
        aws_conn_id=REDSHIFT_COPY_CONN_ID,
        s3_conn_id=AWS_CONN_ID,
        s3_bucket=stack.processed_bucket,
        unload_options=UNLOAD_OPTIONS,
        table_as_file_name=False,
        **job,
    )
    assert operator.execute(context={}) == job["export_key"]
    assert stack.processed_object(job["export_key"]) == "listen_date\n2026-01-01\n"
    assert stack.processed_keys("exports/") == [job["export_key"]]  # the unloaded file is gone
