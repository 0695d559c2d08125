"""One bad file never stops good data: arbitrary bytes and real non-CSV formats
under every raw prefix, next to good files, in one DAG run. The run never
crashes or hangs, each bad file is rejected with a printable reason, every
good file loads, and the run ends within RUN_BOUND_SECONDS."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.music_kpis.schemas import all_schemas
from localdev import demo
from localdev.local_stack import s3_client
from localdev.sample_data import generate
from tests.conftest import Stack, fresh_database
from tests.helpers.warehouse_checks import assert_warehouse_matches

pytestmark = pytest.mark.integration

# A run of the sample plus ~25 bad files takes ~40 s on 2 cores; a retried task
# (5 minutes apart outside the tests) or a hang would take far longer.
RUN_BOUND_SECONDS = 150
# `make demo` on a poisoned batch (after Airflow's one-time database set-up in .local/).
DEMO_BOUND_SECONDS = 60

PNG = (
    bytes.fromhex("89504e470d0a1a0a0000000d4948445200000010000000100806000000")
    + b"\x1f\xf3\xffa\x00\x00\x00\x01sRGB\x00\xae\xce\x1c\xe9\n,\x00\x9a\x00\x00\x00IEND\xaeB`\x82"
)
HEADER = "user_id,track_id,listen_time\n"


def poison(raw: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """(files that must be rejected, files that load with one row quarantined -> the rule it breaks)."""
    good_line = (raw / "streams" / "streams1.csv").read_text().splitlines()[1]
    repeats = "".join(f"{good_line}\n" for _ in range(40))  # plays the warehouse already has: no new data
    good_csv = (raw / "streams" / "streams1.csv").read_bytes()
    rejected = {
        "streams/image.csv": PNG,
        "metadata/songs/image.csv": PNG,
        "streams/utf16.csv": (HEADER + repeats).encode("utf-16"),
        "streams/truncated.csv.gz": gzip.compress(good_csv)[: len(good_csv) // 8],
        "metadata/users/junk.csv.gz": gzip.compress(bytes(range(256)) * 8),
        "streams/empty.csv": b"",
    }
    quarantined = {
        "streams/nul_value.csv": (
            HEADER + repeats + "1,abc\x00def,2024-03-01 10:00:00\n",
            "contains a control character",
        ),
        "streams/year_10000.csv": (
            HEADER + repeats + "1,t1,9999-12-31T23:59:59-01:00\n",
            "outside 0001-01-01..9999-12-31",
        ),
    }
    for key, (body, _) in quarantined.items():
        (raw / key).write_text(body)
    (raw / "streams" / "notes.txt").write_text("not data")
    (raw / "streams" / "repeats.csv.gz").write_bytes(gzip.compress(good_csv))
    (raw / "metadata" / "users" / "header_only.csv").write_text("user_id,user_name,user_age,user_country,created_at")
    return rejected, {key: rule for key, (_, rule) in quarantined.items()}


def quarantine_rows(stack: Stack, key: str) -> list[dict]:
    (file_id,) = stack.query("SELECT file_id FROM etl_file_ledger WHERE raw_key = %s", (key,))[0]
    s3 = s3_client(stack.endpoint)
    rows: list[dict] = []
    for part in stack.processed_keys(f"quarantine/streams/{file_id}/"):
        body = s3.get_object(Bucket=stack.processed_bucket, Key=part)["Body"].read()
        rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def assert_rejected_with_reasons(stack: Stack, keys: list[str]) -> None:
    reasons = dict(stack.query("SELECT raw_key, reason FROM etl_file_ledger WHERE outcome = 'rejected'"))
    for key in keys:
        assert reasons.get(key), key
        assert reasons[key].isprintable() and len(reasons[key]) < 500, (key, reasons[key])


@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fuzz=st.lists(st.binary(max_size=3000), min_size=3, max_size=3))
def test_fuzz_files_are_rejected_and_good_files_load(
    moto_endpoint: str, postgres, airflow_db: None, tmp_path_factory: pytest.TempPathFactory, fuzz: list[bytes]
) -> None:
    raw = tmp_path_factory.mktemp("raw")
    generate(raw)
    good = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.csv"))
    rejected, quarantined = poison(raw)
    for schema in all_schemas():
        for i, blob in enumerate(fuzz):
            rejected[f"{schema.raw_prefix}fuzz-{i}.csv"] = blob
    with fresh_database(postgres) as warehouse, pytest.MonkeyPatch.context() as mp:
        stack = Stack.create(moto_endpoint, warehouse)
        stack.activate(mp)
        stack.upload(raw)
        for key, body in rejected.items():
            stack.put(key, body)
        started = time.monotonic()
        run = stack.run_dag()
        took = time.monotonic() - started

        assert took < RUN_BOUND_SECONDS
        assert run.state == "failed"  # report_rejected_files, after every good file was loaded
        assert sorted(run.summary["rejected_files"]) == sorted(rejected)
        loaded = set(run.summary["loaded_files"])
        assert {*good, *quarantined, "streams/repeats.csv.gz", "metadata/users/header_only.csv"} <= loaded
        assert "streams/notes.txt" not in loaded | set(run.summary["skipped_files"])
        assert_rejected_with_reasons(stack, list(rejected))
        assert run.summary["quarantined_rows"]["streams"] == len(quarantined)
        for key, rule in quarantined.items():
            (row,) = quarantine_rows(stack, key)
            assert row["raw_key"] == key and row["source_row"] == 41, row
            assert rule in row["reason"] and row["reason"].isprintable(), row
        (gz_rows,) = stack.query("SELECT rows_read FROM etl_file_ledger WHERE raw_key = 'streams/repeats.csv.gz'")
        assert gz_rows[0] == len((raw / "streams" / "streams1.csv").read_text().splitlines()) - 1
        # Everything but the poison equals the from-scratch oracle (which reads .csv files only).
        for key in quarantined:
            (raw / key).unlink()
        assert_warehouse_matches(stack, raw, raw.parent / f"{raw.name}-out")
    shutil.rmtree(raw, ignore_errors=True)


def test_make_demo_on_a_poisoned_batch_names_each_rejected_file(
    stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "raw"
    generate(raw, streams_files=1, streams_per_file=100)
    # The inputs of the issue that used to stop the whole batch, one file each.
    rejected = {
        "streams/nul.csv": (HEADER + "1,abc\x00def,2024-03-01 10:00:00\n").encode(),
        "streams/image.csv": PNG,
        "streams/year_10000.csv": (HEADER + "1,t1,9999-12-31T23:59:59-01:00\n").encode(),
    }
    for key, body in rejected.items():
        (raw / key).write_bytes(body)
    (raw / "streams" / "batch.txt").write_text("not data")
    monkeypatch.setenv("WAREHOUSE_URL", stack.warehouse.url())
    state = tmp_path / "state"
    demo.ensure_airflow_db(demo.airflow_home_environment(state))  # once per .local/, not part of a run
    saved = dict(os.environ)
    started = time.monotonic()
    try:
        code = demo.main(["--data", str(raw), "--out", str(tmp_path / "out"), "--state", str(state)])
    finally:  # demo.main configures Airflow through os.environ
        os.environ.clear()
        os.environ.update(saved)
    took = time.monotonic() - started

    assert code == 1
    assert took < DEMO_BOUND_SECONDS
    err = capsys.readouterr().err
    assert f"{len(rejected)} raw file(s) rejected; every other file was loaded:" in err
    reasons = dict(stack.query("SELECT raw_key, reason FROM etl_file_ledger WHERE outcome = 'rejected'"))
    for key in rejected:
        assert f"  {key}: {reasons[key]}\n" in err
    assert "Ignored streams/batch.txt: not a raw data file" in err
    assert "contains a control character (got 'abc\\x00def')" in err
    assert "\x00" not in err
