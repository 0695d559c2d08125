"""Checks after loading and alerts, in real DAG runs (dag.test()) on the local warehouse and the
moto server: a KPI row corrupted as refresh_kpis writes it fails the check that guards it, the
failed run's alert and the rejected-files report arrive on an SQS queue subscribed to the topic."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from include.music_kpis.migrations import migrate
from include.music_kpis.settings import ALERTS_TOPIC_ARN
from localdev.local_stack import MOTO_CREDENTIALS, REGION
from localdev.sample_data import generate
from tests.conftest import Stack
from tests.helpers.dag import CHECK_TASK_IDS

pytestmark = pytest.mark.integration

CHECKS = set(CHECK_TASK_IDS)
# check -> how the warehouse is corrupted during the run (a trigger's statement, after rows go into a table).
CORRUPTIONS = {
    # A diversity index above 1: a value out of range (SQLColumnCheckOperator).
    "check_hourly_kpis_values": (
        "hourly_kpis",
        "UPDATE hourly_kpis SET track_diversity_index = 1.5 "
        "WHERE (listen_date, listen_hour) = (SELECT listen_date, listen_hour FROM hourly_kpis "
        "ORDER BY listen_date, listen_hour LIMIT 1)",
    ),
    # More distinct tracks than plays in an hour (SQLTableCheckOperator, a rule between columns).
    "check_hourly_kpis_rows": (
        "hourly_kpis",
        "UPDATE hourly_kpis SET unique_tracks = total_plays + 1 "
        "WHERE (listen_date, listen_hour) = (SELECT listen_date, listen_hour FROM hourly_kpis "
        "ORDER BY listen_date, listen_hour LIMIT 1)",
    ),
    # A genre's row lost: its date's plays no longer add up to the streams (the reconciliation).
    "check_plays_reconcile": (
        "genre_kpis",
        "DELETE FROM genre_kpis WHERE (listen_date, track_genre) = (SELECT listen_date, track_genre "
        "FROM genre_kpis ORDER BY listen_date, track_genre LIMIT 1)",
    ),
    # The fact table's key no longer enforced (dropped when the load marks the dates to recompute):
    # on PostgreSQL, the check of unique keys is that the primary key enforces them.
    "check_streams_keys_unique": ("kpi_dirty_dates", "ALTER TABLE streams DROP CONSTRAINT IF EXISTS streams_pkey"),
}


def corrupt_on_refresh(stack: Stack, table: str, statement: str) -> None:
    conn = stack.warehouse.connect()
    migrate(conn, "postgres")  # the tables the trigger goes on, as create_tables leaves them
    with conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE FUNCTION corrupt_kpis() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {statement}; "
            "RETURN NULL; END $$"
        )
        cur.execute(
            f"CREATE TRIGGER corrupt_kpis AFTER INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION corrupt_kpis()"
        )
    conn.close()


def task_states(run_id: str) -> dict[str, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    from localdev.dag_runner import DAG_ID

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)
        return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}


def recomputed_dates(stack: Stack) -> list[str]:
    return [str(row[0]) for row in stack.query("SELECT DISTINCT listen_date FROM streams ORDER BY 1")]


@pytest.fixture
def sample_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    generate(raw)
    return raw


def test_clean_run_passes_every_check_and_a_run_with_nothing_new_skips_them(stack, sample_raw: Path) -> None:
    stack.upload(sample_raw)
    first = stack.run_dag()
    assert first.state == "success"
    states = task_states(first.run_id)
    assert {states[check] for check in CHECKS} == {"success"}
    second = stack.run_dag()  # nothing new: nothing recomputed, nothing to check
    assert second.state == "success"
    states = task_states(second.run_id)
    assert states["recomputed_dates"] == "success"
    assert {states[check] for check in CHECKS} == {"skipped"}


@pytest.mark.parametrize("check", list(CORRUPTIONS))
def test_corrupted_kpi_row_fails_its_check(stack, sample_raw: Path, check: str, caplog) -> None:
    corrupt_on_refresh(stack, *CORRUPTIONS[check])
    stack.upload(sample_raw)
    run = stack.run_dag()
    assert run.state == "failed"
    states = task_states(run.run_id)
    assert {c for c in CHECKS if states[c] == "failed"} == {check}
    assert states["report_rejected_files"] == "success"  # the report does not wait for the checks
    dates = ", ".join(recomputed_dates(stack))
    assert f"Check {check} failed on the dates this run recomputed: {dates}" in caplog.text


@pytest.fixture
def alerts_queue(stack, monkeypatch: pytest.MonkeyPatch):
    """An SNS topic on the moto server, set as the alerts topic, with an SQS queue subscribed to it."""
    sns = boto3.client("sns", endpoint_url=stack.endpoint, region_name=REGION, **MOTO_CREDENTIALS)
    sqs = boto3.client("sqs", endpoint_url=stack.endpoint, region_name=REGION, **MOTO_CREDENTIALS)
    suffix = uuid.uuid4().hex[:10]
    topic_arn = sns.create_topic(Name=f"music-kpis-alerts-{suffix}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"music-kpis-alerts-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv(ALERTS_TOPIC_ARN.environment_variable, topic_arn)

    def received() -> list[dict]:
        messages = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            messages += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return messages

    return received


def test_failed_run_alerts_and_reports_rejected_files_on_sns(stack, sample_raw: Path, alerts_queue) -> None:
    corrupt_on_refresh(stack, *CORRUPTIONS["check_plays_reconcile"])
    (sample_raw / "streams" / "bad.csv").write_text("user_id,track_id\n1,abc\n")
    stack.upload(sample_raw)
    run = stack.run_dag()
    assert run.state == "failed"
    by_subject = {m["Subject"]: m["Message"] for m in alerts_queue()}
    assert set(by_subject) == {
        "Airflow: a run of music_streaming_kpis failed",
        "Airflow: music_streaming_kpis rejected raw files",
    }
    report = by_subject["Airflow: music_streaming_kpis rejected raw files"]
    assert "streams/bad.csv: missing required column(s): listen_time" in report
    alert = by_subject["Airflow: a run of music_streaming_kpis failed"]
    assert f"The run {run.run_id} of DAG music_streaming_kpis failed" in alert
    assert "\nTask: " in alert and "each one's log says why" in alert


def test_successful_run_sends_nothing(stack, sample_raw: Path, alerts_queue) -> None:
    stack.upload(sample_raw)
    assert stack.run_dag().state == "success"
    assert alerts_queue() == []
