"""What the KPI report shows, read from the warehouse and the processed bucket.

Apart from the rendering (kpi_report.py, Plotly): `make demo` reads the run's
files from here without loading Plotly or Airflow's Amazon provider.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from include.music_kpis.files import batch_id_for
from include.music_kpis.quarantine import BatchFile
from include.music_kpis.settings import REPORT_LATEST_KEY, REPORTS_PREFIX
from include.music_kpis.warehouse import sql_environment

Records = Callable[[str], Sequence[Sequence[Any]]]
ReasonCounts = Callable[[list[BatchFile]], Counter[tuple[str, str]]]

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class ReportData:
    run_id: str
    generated_at: str
    genre_days: list[tuple]  # listen_date, track_genre, total_plays, unique_listeners
    hours: list[tuple]  # listen_date, listen_hour, total_plays, unique_listeners, track_diversity_index
    top_artists: list[tuple]  # listen_hour, top_artist, dates_on_top
    top_tracks: list[tuple]  # track_genre, top_track_id, track_name, artists, dates_on_top
    files: list[BatchFile] = field(default_factory=list)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (dataset, reason kind) -> rows


def report_query(name: str, backend: str, **params: str) -> str:
    return sql_environment(backend).get_template(f"kpi_report/{name}.sql").render(**params)


def run_files(records: Records, backend: str, run_id: str) -> list[BatchFile]:
    """The files the run saw, each with its outcome and quarantined rows."""
    batch_id = batch_id_for(run_id)
    if not _HEX.fullmatch(batch_id):  # rendered into run_files.sql
        raise ValueError(f"not a batch id: {batch_id!r}")
    return [BatchFile(*row) for row in records(report_query("run_files", backend, batch_id=batch_id))]


def load_report_data(records: Records, backend: str, run_id: str, reason_counts: ReasonCounts) -> ReportData:
    """Everything the report shows; `records` runs one query on the warehouse."""
    files = run_files(records, backend, run_id)
    return ReportData(
        run_id=run_id,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        genre_days=[tuple(r) for r in records(report_query("genre_days", backend))],
        hours=[tuple(r) for r in records(report_query("hours", backend))],
        top_artists=[tuple(r) for r in records(report_query("top_artist_by_hour", backend))],
        top_tracks=[tuple(r) for r in records(report_query("top_track_by_genre", backend))],
        files=files,
        reasons=reason_counts(files),
    )


def report_keys(run_id: str) -> tuple[str, str]:
    """(this run's key, the stable key) of the report in the processed bucket."""
    safe_run_id = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    return f"{REPORTS_PREFIX}runs/{safe_run_id}.html", REPORT_LATEST_KEY
