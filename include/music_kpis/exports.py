"""The KPI CSVs: ``genre_kpis.csv`` and ``hourly_kpis.csv``, locally in OUT and in production in the
processed bucket under ``exports/``, with the same columns, order and spreadsheet-safe text.

The rows come from :meth:`KpiTable.export_query` on both backends, and each run
leaves them at a stable key, ``exports/<table>.csv``, for BI tools to read. On
Redshift the DAG's ``export_kpis`` task is ``KpiUnloadOperator`` (operators.py):
the provider's RedshiftToS3Operator (UNLOAD), whose one file is then moved to
that key, since UNLOAD always appends a part number to the name it is given. On
PostgreSQL the same task is ``PostgresToS3CsvOperator``, which writes the key
with :func:`write_kpi_csv`, the writer of ``make demo``'s OUT files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from include.music_kpis.kpis import kpi_tables
from include.music_kpis.settings import EXPORTS_PREFIX

# UNLOAD options (Amazon Redshift Database Developer Guide, "UNLOAD"): CSV with a header line;
# PARALLEL OFF writes one file, serially and in the query's ORDER BY, named <prefix>000 while it
# stays under MAXFILESIZE (6.2 GB; a KPI table is a few MB a year); EXTENSION appends ".csv"; the
# file of the previous run is replaced (ALLOWOVERWRITE). NULL is an empty field, as in OUT's files.
UNLOAD_OPTIONS = ["CSV", "HEADER", "PARALLEL OFF", "ALLOWOVERWRITE", "EXTENSION 'csv'"]
# What UNLOAD ... PARALLEL OFF EXTENSION 'csv' appends to the prefix it is given.
UNLOADED_SUFFIX = "000.csv"


def export_key(table: str) -> str:
    """The object a run leaves for a KPI table: exports/genre_kpis.csv, exports/hourly_kpis.csv."""
    return f"{EXPORTS_PREFIX}{table}.csv"


def unload_prefix(table: str) -> str:
    """The S3 key prefix handed to UNLOAD, which writes <prefix>000.csv there."""
    return f"{EXPORTS_PREFIX}unload/{table}_"


def export_jobs(backend: str) -> list[dict[str, str]]:
    """One job a KPI table, as mapped kwargs of the export_kpis task on either backend."""
    if backend == "redshift":
        return [
            {
                "select_query": kpi.export_query(backend),
                "s3_key": unload_prefix(kpi.name),
                "export_key": export_key(kpi.name),
            }
            for kpi in kpi_tables()
        ]
    return [{"select_query": kpi.export_query(backend), "s3_key": export_key(kpi.name)} for kpi in kpi_tables()]


def csv_value(value: Any) -> Any:
    """A KPI value as written: doubles to 6 decimals (contract section 6)."""
    return round(value, 6) if isinstance(value, float) else value


def write_kpi_csv(handle: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A KPI CSV: header, then the rows of export_query (already spreadsheet-safe), NULL as empty."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_value(v) for v in row] for row in rows)
