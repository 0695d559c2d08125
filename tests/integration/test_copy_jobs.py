"""What copy_to_staging is asked to COPY: one job per accepted file that has rows, plus the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev import dag_runner
from localdev.sample_data import generate

pytestmark = pytest.mark.integration


def mapped_copies(run_id: str) -> int:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return (
            session.query(TaskInstance)
            .filter(
                TaskInstance.dag_id == dag_runner.DAG_ID,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == "copy_to_staging",
            )
            .count()
        )


def test_file_without_good_rows_is_recorded_but_not_copied(stack, tmp_path: Path) -> None:
    """How Redshift's Parquet COPY treats a 0-row file is undocumented, so none is issued."""
    raw = tmp_path / "raw"
    generate(raw)
    header_only = "streams/header_only.csv"
    (raw / header_only).write_text("user_id,track_id,listen_time\n")
    stack.upload(raw)

    run = stack.run_dag()

    assert run.state == "success"
    assert header_only in run.summary["loaded_files"]  # in the ledger: never processed again
    files_with_rows = len(run.summary["loaded_files"]) - 1
    assert mapped_copies(run.run_id) == files_with_rows + 1  # + the batch manifest
