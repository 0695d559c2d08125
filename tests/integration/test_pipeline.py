"""The DAG, run through Airflow's dag.test() on moto + PostgreSQL, against an
independent plain-Python computation of contract sections 2-5 (tests/helpers/kpi_oracle.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from localdev import demo, outputs
from localdev.sample_data import generate
from tests.helpers.kpi_oracle import assert_kpis_equal, expected_tables, read_kpi_csv
from tests.helpers.warehouse_checks import assert_warehouse_matches, kpis_of

pytestmark = pytest.mark.integration


@pytest.fixture
def sample_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    generate(raw)
    return raw


def test_sample_data_end_to_end(stack, sample_raw: Path, tmp_path: Path) -> None:
    stack.upload(sample_raw)
    run = stack.run_dag()
    assert run.state == "success"
    assert_warehouse_matches(stack, sample_raw, tmp_path / "out")
    summary = run.summary
    assert summary["rejected_files"] == [] and summary["skipped_files"] == []
    assert summary["loaded_files"] == sorted(p.relative_to(sample_raw).as_posix() for p in sample_raw.rglob("*.csv"))
    assert summary["streams_rows"] == len(expected_tables(sample_raw).streams)
    assert summary["parked_streams"] == 0
    # A first load appends without the fact key's index and builds it after (load_streams.sql): it is back.
    assert stack.query(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'streams'::regclass AND contype = 'p'"
    ) == [("PRIMARY KEY (listen_date, listen_time, user_id, track_id)",)]  # the fact key (warehouse.fact_key)
    # Processed bucket layout (contract section 1): validated and transformed Parquet per file.
    keys = stack.processed_keys()
    for dataset in ("users", "songs", "streams"):
        assert any(k.startswith(f"validated/{dataset}/") and k.endswith(".parquet") for k in keys)
        assert any(k.startswith(f"transformed/{dataset}/") and k.endswith(".parquet") for k in keys)


def test_second_run_loads_nothing_and_changes_nothing(stack, sample_raw: Path, tmp_path: Path) -> None:
    stack.upload(sample_raw)
    first = stack.run_dag()
    before = kpis_of(stack, tmp_path / "first")
    second = stack.run_dag()
    assert second.state == "success"
    assert second.summary["loaded_files"] == []
    assert second.summary["skipped_files"] == first.summary["loaded_files"]
    assert kpis_of(stack, tmp_path / "second") == before
    assert second.summary["streams_rows"] == first.summary["streams_rows"]


def test_incremental_batches_equal_one_batch(stack, sample_raw: Path, tmp_path: Path) -> None:
    """Streams arriving over several runs, songs/users arriving late: same KPIs as all at once."""
    growing = tmp_path / "growing"
    stream_files = sorted((sample_raw / "streams").glob("*.csv"))
    # Run 1: streams only -> everything parked, no KPIs yet.
    (growing / "streams").mkdir(parents=True)
    shutil.copy(stream_files[0], growing / "streams" / stream_files[0].name)
    stack.upload(growing)
    run = stack.run_dag()
    assert run.summary["streams_rows"] == 0 and run.summary["parked_streams"] > 0
    assert stack.query("SELECT COUNT(*) FROM genre_kpis")[0][0] == 0
    # Run 2: dimensions arrive -> parked plays load.
    shutil.copytree(sample_raw / "metadata", growing / "metadata")
    stack.upload(growing)
    run = stack.run_dag()
    assert run.summary["parked_streams"] == 0
    assert run.summary["loaded_files"] == ["metadata/songs/songs.csv", "metadata/users/users.csv"]
    assert_warehouse_matches(stack, growing, tmp_path / "out2")
    # Run 3: the remaining stream files.
    for path in stream_files[1:]:
        shutil.copy(path, growing / "streams" / path.name)
    stack.upload(growing)
    run = stack.run_dag()
    assert run.summary["loaded_files"] == [f"streams/{p.name}" for p in stream_files[1:]]
    assert_warehouse_matches(stack, sample_raw, tmp_path / "out3")


def test_dimension_update_recomputes_touched_dates(stack, sample_raw: Path, tmp_path: Path) -> None:
    stack.upload(sample_raw)
    stack.run_dag()
    # A later songs file moves a played track to another genre and artist.
    track_id = stack.query("SELECT track_id FROM streams ORDER BY listen_time LIMIT 1")[0][0]
    songs_csv = (sample_raw / "metadata" / "songs" / "songs.csv").read_text().splitlines()
    header, rows = songs_csv[0], [r for r in songs_csv[1:] if f",{track_id}," in r]
    (row,) = rows
    cells = row.split(",")
    columns = header.split(",")
    cells[columns.index("track_genre")] = "Polka"
    cells[columns.index("artists")] = "Brand New Artist"
    cells[columns.index("popularity")] = "99"
    update = sample_raw / "metadata" / "songs" / "songs_update.csv"
    update.write_text(header + "\n" + ",".join(cells) + "\n")
    stack.upload(sample_raw)
    run = stack.run_dag()
    assert run.summary["loaded_files"] == ["metadata/songs/songs_update.csv"]
    assert stack.query("SELECT track_genre FROM songs WHERE track_id = %s", (track_id,)) == [("polka",)]
    assert_warehouse_matches(stack, sample_raw, tmp_path / "out")


def test_rejected_file_fails_the_run_after_loading_good_files(stack, sample_raw: Path, tmp_path: Path) -> None:
    (sample_raw / "streams" / "bad.csv").write_text("user_id,track_id\n1,abc\n")
    stack.upload(sample_raw)
    run = stack.run_dag()
    assert run.state == "failed"
    assert run.summary["rejected_files"] == ["streams/bad.csv"]
    assert "streams/bad.csv" not in run.summary["loaded_files"]
    (sample_raw / "streams" / "bad.csv").unlink()
    assert_warehouse_matches(stack, sample_raw, tmp_path / "out")
    reason = stack.query("SELECT reason FROM etl_file_ledger WHERE raw_key = 'streams/bad.csv'")[0][0]
    assert "missing required column(s): listen_time" in reason
    assert any(k.startswith("quarantine/streams/") for k in stack.processed_keys())


def test_make_demo_outputs(stack, sample_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """demo.main (what `make demo DATA=... OUT=...` runs) writes contract section 6's files."""
    monkeypatch.setenv("WAREHOUSE_URL", stack.warehouse.url())
    out = tmp_path / "out"
    saved = dict(os.environ)
    try:
        code = demo.main(["--data", str(sample_raw), "--out", str(out), "--state", str(tmp_path / "state")])
    finally:  # demo.main configures Airflow through os.environ
        os.environ.clear()
        os.environ.update(saved)
    assert code == 0
    summary = json.loads((out / "run_summary.json").read_text())
    assert set(summary) == {
        "users_rows",
        "songs_rows",
        "streams_rows",
        "parked_streams",
        "quarantined_rows",
        "rejected_files",
        "loaded_files",
        "skipped_files",
    }
    assert summary["quarantined_rows"] == {"users": 0, "songs": 0, "streams": 0}
    header = (out / "genre_kpis.csv").read_text().splitlines()[0]
    assert header == (
        "listen_date,track_genre,total_plays,unique_listeners,avg_popularity,avg_duration_sec,top_track_id"
    )
    header = (out / "hourly_kpis.csv").read_text().splitlines()[0]
    assert (
        header == "listen_date,listen_hour,unique_listeners,total_plays,unique_tracks,track_diversity_index,top_artist"
    )
    expected = expected_tables(sample_raw)
    assert_kpis_equal(read_kpi_csv(out / "genre_kpis.csv"), expected.genre_kpis)
    assert_kpis_equal(read_kpi_csv(out / "hourly_kpis.csv"), expected.hourly_kpis)


def test_report_quarantine_and_exports_of_a_run(
    stack, sample_raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """OUT/report.html and OUT/quarantine/ (write_outputs, shared by make demo and make run), and the
    production outputs of the same run: exports/ (export_kpis) and reports/ (publish_report)."""
    streams = sample_raw / "streams" / "streams1.csv"
    rows = streams.read_text(encoding="utf-8").splitlines()
    streams.write_text("\n".join([*rows, "not-a-user,t1,2024-03-02T08:00:00Z"]) + "\n", encoding="utf-8")
    stack.upload(sample_raw)
    run = stack.run_dag()
    assert run.state == "success" and run.summary["quarantined_rows"]["streams"] == 1
    out = tmp_path / "out"
    out.mkdir()
    code = outputs.write_outputs(
        stack.warehouse, run.run_id, run.state, out, "", stack.endpoint, stack.processed_bucket
    )
    assert code == 0
    assert json.loads((out / "run_summary.json").read_text()) == run.summary  # unchanged by the report
    quarantined = (out / "quarantine" / "streams" / "streams1.csv").read_text(encoding="utf-8").splitlines()
    assert quarantined[0] == "row,reason,record"
    assert quarantined[1].startswith(f"{len(rows)},user_id: ")  # the data row number: header is row 0
    # The terminal's reason counts, read from the same quarantine Parquet as the CSV.
    printed = capsys.readouterr().out
    assert "Quarantined rows by reason (1 rows;" in printed
    assert re.search(r"^ +1  streams: user_id: [^(]+$", printed, re.MULTILINE), printed
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('class="chart"') == 8 and "quarantine-reasons-data" in page
    # exports/: the same bytes as OUT's files (one query, one writer), at stable keys.
    exports = {key: stack.processed_object(key) for key in stack.processed_keys("exports/")}
    assert exports == {
        "exports/genre_kpis.csv": (out / "genre_kpis.csv").read_text(encoding="utf-8"),
        "exports/hourly_kpis.csv": (out / "hourly_kpis.csv").read_text(encoding="utf-8"),
    }
    reports = stack.processed_keys("reports/")
    assert reports == sorted(
        ["reports/latest.html", f"reports/runs/{run.run_id.replace(':', '_').replace('+', '_')}.html"]
    )
    assert 'data-chart="genre-trends-data"' in stack.processed_object("reports/latest.html")
