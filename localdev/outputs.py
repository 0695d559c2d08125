"""What a DAG run leaves on the laptop, read back after it: OUT's KPI CSVs,
run_summary.json (contract section 6), quarantine/ and report.html, and the report
on the terminal. Shared by `make demo` and `make run`, while the S3 stand-in and
the warehouse of the run are still up."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from include.music_kpis.exports import csv_value, write_kpi_csv
from include.music_kpis.files import batch_id_for, ignored_reason
from include.music_kpis.kpis import kpi_tables
from include.music_kpis.quarantine import BatchFile, write_local_csvs
from include.music_kpis.report_data import report_keys, run_files
from include.music_kpis.schemas import all_schemas
from include.music_kpis.warehouse import SQL_DIR
from localdev.local_stack import PROCESSED_BUCKET_NAME, PostgresTarget, s3_client


def not_read(keys: list[str]) -> list[tuple[str, str]]:
    """Uploaded keys the DAG will not read, with the reason."""
    prefixes = tuple(schema.raw_prefix for schema in all_schemas())
    skipped = []
    for key in keys:
        reason = ignored_reason(key) if key.startswith(prefixes) else f"not under a raw prefix ({', '.join(prefixes)})"
        if reason:
            skipped.append((key, reason))
    return skipped


# Why each file of the batch was rejected (etl_batch_files, written by record_batch).
REPORTS_DIR = SQL_DIR / "reports"


def query(warehouse: PostgresTarget, statement: str, args: dict | tuple = ()) -> list[tuple]:
    conn = warehouse.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall()
    finally:
        conn.close()


def report(warehouse: PostgresTarget, name: str, **args: str) -> list[tuple]:
    """Run include/sql/reports/<name>.sql."""
    return query(warehouse, (REPORTS_DIR / f"{name}.sql").read_text(encoding="utf-8"), args)


def run_summary(warehouse: PostgresTarget, batch_id: str) -> dict[str, Any]:
    """run_summary.json of contract section 6."""
    (counts,) = report(warehouse, "table_counts")
    files = report(warehouse, "batch_files", batch_id=batch_id)
    quarantined = {"users": 0, "songs": 0, "streams": 0}
    for dataset, _, outcome, rows in files:
        if outcome == "loaded":
            quarantined[dataset] += rows
    return {
        "users_rows": counts[0],
        "songs_rows": counts[1],
        "streams_rows": counts[2],
        "parked_streams": counts[3],
        "quarantined_rows": quarantined,
        "rejected_files": [key for _, key, outcome, _ in files if outcome == "rejected"],
        "loaded_files": [key for _, key, outcome, _ in files if outcome == "loaded"],
        "skipped_files": [key for _, key, outcome, _ in files if outcome == "skipped"],
    }


def export_kpis(warehouse: PostgresTarget, out_dir: Path) -> dict[str, list[tuple]]:
    """Write <kpi table>.csv for every KPI table (genre_kpis.csv, hourly_kpis.csv): every row, sorted
    by key, text spreadsheet-safe; the query and writer of the production exports (exports.py)."""
    exported = {}
    for kpi in kpi_tables():
        rows = query(warehouse, kpi.export_query())
        with (out_dir / f"{kpi.name}.csv").open("w", newline="", encoding="utf-8") as handle:
            write_kpi_csv(handle, kpi.column_names, rows)
        exported[kpi.name] = rows
    return exported


def copy_published_report(s3: Any, bucket: str, run_id: str, path: Path) -> bool:
    """OUT/report.html: the report the run's publish_report task wrote to the processed bucket
    (the S3 stand-in goes away with the run); False when the run stopped before it."""
    path.unlink(missing_ok=True)  # never a previous run's report
    try:
        body = s3.get_object(Bucket=bucket, Key=report_keys(run_id)[0])["Body"].read()
    except s3.exceptions.NoSuchKey:
        return False
    path.write_bytes(body)
    return True


# Reasons listed on the terminal; OUT/quarantine/ and the report have them all.
COMMON_REASONS = 10


def write_quarantine(s3: Any, bucket: str, files: list[BatchFile], out_dir: Path) -> None:
    """OUT/quarantine/<dataset>/<file>.csv from the quarantine Parquet of this run's files (the
    S3 stand-in goes away with the run), and the most common reasons on the terminal."""
    shutil.rmtree(out_dir / "quarantine", ignore_errors=True)  # this run's rows only
    counts = write_local_csvs(s3, bucket, files, out_dir)
    if not counts:
        return
    common = counts.most_common(COMMON_REASONS)
    print(f"\nQuarantined rows by reason ({sum(counts.values())} rows; each with its row number and reason in "
          f"{out_dir / 'quarantine'}):")  # fmt: skip
    print("\n".join(f"  {n:>8}  {dataset}: {reason}" for (dataset, reason), n in common))
    if len(counts) > COMMON_REASONS:
        print(f"  ... {len(counts) - COMMON_REASONS} more reasons")


def format_table(columns: list[str], rows: list[tuple], limit: int) -> str:
    shown = [[str(csv_value(v)) for v in row] for row in rows[:limit]]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more rows")
    return "\n".join(lines)


def write_outputs(
    warehouse: PostgresTarget,
    run_id: str,
    state: str,
    out_dir: Path,
    resume: str,
    s3_endpoint: str,
    processed_bucket: str = PROCESSED_BUCKET_NAME,
) -> int:
    """After a run: OUT's KPI CSVs, run_summary.json (contract section 6), quarantine/ and
    report.html (the one the run published), the report on the terminal, and the exit status (1 when a file was rejected
    or the run did not succeed; `resume` says how to finish it). Shared by `make demo` and
    `make run`; the processed bucket at `s3_endpoint` is still up."""
    batch = batch_id_for(run_id)
    summary = run_summary(warehouse, batch)
    rejected = report(warehouse, "rejected_files", batch_id=batch)
    streams = report(warehouse, "batch_streams", batch_id=batch)
    kpis = export_kpis(warehouse, out_dir)
    (out_dir / "run_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    s3 = s3_client(s3_endpoint)
    files = run_files(lambda statement: query(warehouse, statement), "postgres", run_id)
    report_written = copy_published_report(s3, processed_bucket, run_id, out_dir / "report.html")
    for kpi in kpi_tables():
        rows = kpis[kpi.name]
        print(f"\n{kpi.name} ({len(rows)} rows)\n" + format_table(kpi.column_names, rows, 40))
    if streams:
        rows, loaded, parked, repeats = streams[0]
        print(f"\nStream rows this run: {rows} read, {loaded} plays loaded, {repeats} repeats skipped, {parked} parked")
    print("\nrun_summary.json\n" + json.dumps(summary, indent=2))
    write_quarantine(s3, processed_bucket, files, out_dir)
    if report_written:
        print(f"\nKPI report: {out_dir / 'report.html'} (one file; opens offline in any browser)")
    else:
        print("\nNo KPI report: the run stopped before its publish_report task.")
    print(f"\nDAG run {run_id}: {state}. Output in {out_dir}")
    if rejected:
        lines = "\n".join(f"  {key}: {reason}" for key, reason in rejected)
        print(f"{len(rejected)} raw file(s) rejected; every other file was loaded:\n{lines}", file=sys.stderr)
        return 1
    if state != "success":
        print(f"The DAG run failed: see the task log above (--verbose shows all of it). {resume}", file=sys.stderr)
        return 1
    return 0
