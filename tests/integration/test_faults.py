"""Fault injection: each warehouse step and each mapped COPY fails, then Airflow
retries the task, or the failed DAG run is run again; the warehouse must end
row for row as an uninterrupted run leaves it.

Faults are PostgreSQL triggers that raise while a step writes (late in its
transaction, after it has changed other tables). Their counter is a sequence,
which a rollback does not reset, so a fault fires a set number of times.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from include.music_kpis.files import batch_id_for
from include.music_kpis.migrations import migrate
from localdev import dag_runner, outputs
from localdev.sample_data import generate
from tests.conftest import Stack, fresh_database

pytestmark = pytest.mark.integration

# step -> (table, trigger timing and condition): where the fault fires.
FAULTS = {
    "copy_to_staging": "AFTER INSERT ON stg_streams FOR EACH STATEMENT",
    "upsert_users": "AFTER INSERT OR UPDATE ON users FOR EACH STATEMENT",
    "upsert_songs": "AFTER INSERT OR UPDATE ON songs FOR EACH STATEMENT",
    # The ledger rows are the last write of load_streams, after the plays.
    "load_streams": "AFTER INSERT ON etl_file_ledger FOR EACH ROW WHEN (NEW.dataset = 'streams')",
    "record_batch": "AFTER INSERT ON etl_batch_files FOR EACH STATEMENT",
    # hourly_kpis is written after genre_kpis in the same transaction.
    "refresh_kpis": "AFTER INSERT ON hourly_kpis FOR EACH STATEMENT",
}

SNAPSHOT = {
    "users": "SELECT * FROM users ORDER BY user_id",
    "songs": "SELECT * FROM songs ORDER BY track_id",
    "streams": "SELECT * FROM streams ORDER BY user_id, track_id, listen_time",
    "streams_parked": "SELECT user_id, track_id, listen_time, listen_date, listen_hour FROM streams_parked "
    "ORDER BY user_id, track_id, listen_time",
    "genre_kpis": "SELECT * FROM genre_kpis ORDER BY listen_date, track_genre",
    "hourly_kpis": "SELECT * FROM hourly_kpis ORDER BY listen_date, listen_hour",
    "ledger": "SELECT file_id, dataset, raw_key, etag, outcome, reason, rows_read, rows_quarantined "
    "FROM etl_file_ledger ORDER BY file_id",
    "batch_files": "SELECT file_id, dataset, raw_key, outcome, reason, rows_read, rows_quarantined "
    "FROM etl_batch_files ORDER BY file_id",
    "batch_streams": "SELECT stream_rows, streams_loaded, streams_parked, stream_repeats_skipped FROM etl_batches",
    "staging left over": "SELECT 'users', COUNT(*) FROM stg_users UNION ALL SELECT 'songs', COUNT(*) FROM stg_songs "
    "UNION ALL SELECT 'streams', COUNT(*) FROM stg_streams UNION ALL SELECT 'files', COUNT(*) FROM stg_files",
    "dirty dates left over": "SELECT * FROM kpi_dirty_dates",
}

LOGICAL_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def snapshot(stack) -> dict[str, list[tuple]]:
    return {name: stack.query(sql) for name, sql in SNAPSHOT.items()}


def run_once(stack):
    """One DAG run for LOGICAL_DATE; calling it again re-runs that same DAG run."""
    return dag_runner.run_dag(logical_date=LOGICAL_DATE)


def install_fault(stack, step: str, times: int) -> None:
    conn = stack.warehouse.connect()
    migrate(conn, "postgres")  # the tables the trigger goes on, as create_tables leaves them
    with conn, conn.cursor() as cur:
        cur.execute("CREATE SEQUENCE fault_counter")
        cur.execute(
            f"""CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('fault_counter') <= {times} THEN
                    RAISE EXCEPTION 'injected fault in {step}';
                END IF;
                RETURN NULL;
            END $$"""
        )
        cur.execute(f"CREATE TRIGGER injected_fault {FAULTS[step]} EXECUTE FUNCTION inject_fault()")
    conn.close()


def fault_fired(stack) -> int:
    return stack.query("SELECT last_value FROM fault_counter")[0][0]


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    generate(raw, users=60, songs=40, streams_files=3, streams_per_file=120, messy=True)
    return raw


@pytest.fixture(scope="module")
def clean_snapshot(moto_endpoint: str, postgres, airflow_db: None, raw_dir: Path) -> dict[str, list[tuple]]:
    """The warehouse after an uninterrupted run of the same data."""
    with fresh_database(postgres) as db, pytest.MonkeyPatch.context() as mp:
        stack = Stack.create(moto_endpoint, db)
        stack.activate(mp)
        stack.upload(raw_dir)
        _, state = run_once(stack)
        assert state == "success"
        taken = snapshot(stack)
    assert taken["streams"] and taken["streams_parked"] and taken["genre_kpis"]  # the data exercises them
    return taken


@pytest.mark.parametrize("step", list(FAULTS))
def test_airflow_retry_recovers(stack, raw_dir: Path, clean_snapshot, step: str) -> None:
    install_fault(stack, step, times=1)
    stack.upload(raw_dir)
    run_id, state = run_once(stack)
    assert fault_fired(stack) >= 2  # it failed once, then the retry went through
    assert state == "success"
    assert snapshot(stack) == clean_snapshot
    assert outputs.run_summary(stack.warehouse, batch_id_for(run_id))["rejected_files"] == []


@pytest.mark.parametrize("step", list(FAULTS))
def test_rerun_of_failed_dag_run_recovers(stack, raw_dir: Path, clean_snapshot, step: str) -> None:
    # Every try fails (3 per task; the COPY is mapped over the 3 stream files): the DAG run fails.
    install_fault(stack, step, times=9 if step == "copy_to_staging" else 3)
    stack.upload(raw_dir)
    _, state = run_once(stack)
    assert state == "failed"
    # The failed step left the warehouse as it was before that step: no KPIs yet.
    assert stack.query("SELECT COUNT(*) FROM genre_kpis")[0][0] == 0
    assert stack.query("SELECT COUNT(*) FROM hourly_kpis")[0][0] == 0
    _, state = run_once(stack)
    assert state == "success"
    # The batch logs record what each run did (the rerun skips files the failed run loaded);
    # everything else is as after an uninterrupted run.
    audit = {"batch_files", "batch_streams"}
    assert {k: v for k, v in snapshot(stack).items() if k not in audit} == {
        k: v for k, v in clean_snapshot.items() if k not in audit
    }
