"""Users and songs from an operational PostgreSQL (Amazon RDS) instead of CSVs.

With ``metadata_source = rds_postgres`` the DAG's first step extracts the
source tables (include/schemas/sources/rds_postgres.yaml maps them onto the
users and songs schemas) to CSV files in the raw bucket. From there they follow
the CSV path unchanged: ledger, validation, quarantine, MERGE and KPIs.

- Consistent: every table is read in one REPEATABLE READ, read-only
  transaction, so users and tracks come from the same snapshot.
- Bounded memory: ``COPY ... TO STDOUT`` streams rows to a local temporary
  file; nothing holds a table in memory.
- Never half-extracted: a file reaches the raw bucket in one upload after its
  table was read completely; a failed extract leaves nothing behind.
- Incremental where the table has ``updated_at``: a file holds the rows
  changed after the previous file's watermark (minus a look-back window for
  late commits) and is named after its own watermark, so the next extract
  finds where to start in the bucket itself. Files the ledger rejected do not
  count, so their rows are extracted again. A table without ``updated_at`` is
  extracted whole to one key; unchanged content keeps the same ETag and the
  ledger skips it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tempfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import jinja2

from include.music_kpis.files import RawFile
from include.music_kpis.schemas import SourceTable, load_schema, load_source_tables

log = logging.getLogger(__name__)

METADATA_SOURCE_VARIABLE = "music_kpis_metadata_source"
METADATA_SOURCES = ("s3_csv", "rds_postgres")
# Airflow connection (conn_type postgres) of the operational database.
SOURCE_CONN_ID = "music_kpis_source"

SOURCE_SQL_DIR = Path(__file__).resolve().parents[1] / "sql" / "source"
_WATERMARK_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_WATERMARK_KEY = re.compile(r"-until-(\d{8}T\d{6}\.\d{6}Z)\.csv$")


def configured_metadata_source() -> str:
    """Where users and songs come from, read once when the DAG file is parsed."""
    from include.music_kpis.airflow_compat import ParseTimeVariable

    value = os.environ.get(f"AIRFLOW_VAR_{METADATA_SOURCE_VARIABLE.upper()}") or ParseTimeVariable.get(
        METADATA_SOURCE_VARIABLE, default="s3_csv"
    )
    if value not in METADATA_SOURCES:
        raise ValueError(f"{METADATA_SOURCE_VARIABLE} must be one of {METADATA_SOURCES}, not {value!r}")
    return value


@dataclass(frozen=True)
class PresentColumn:
    """A dataset column and the source column it is read from."""

    name: str
    source: str
    data_type: str
    scale: int | None


@dataclass(frozen=True)
class ExtractedFile:
    dataset: str
    raw_key: str
    rows: int

    def to_xcom(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "raw_key": self.raw_key, "rows": self.rows}


class SourceTableError(ValueError):
    """The source table cannot give a column the dataset requires."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(SOURCE_SQL_DIR), undefined=jinja2.StrictUndefined, autoescape=False
)
_TEMPLATES.filters["ident"] = _ident


def render(template: str, **context: Any) -> str:
    """A statement of include/sql/source/ for one table."""
    return _TEMPLATES.get_template(template).render(**context)


def present_columns(table: SourceTable, source_types: dict[str, str]) -> list[PresentColumn]:
    """The mapped columns the source table has, in the dataset's column order.

    A column the mapping marks ``may_be_missing`` is left out when absent (it
    becomes NULL); any other absent column is an error naming the table.
    """
    found = []
    for column in table.columns:
        source = next((name for name in column.sources if name in source_types), None)
        if source is not None:
            found.append(PresentColumn(column.name, source, source_types[source], column.scale))
        elif not column.may_be_missing:
            raise SourceTableError(
                f"source table {table.table!r} has no column for {table.dataset}.{column.name} "
                f"(looked for {', '.join(column.sources)})"
            )
    return found


def extract_key(table: SourceTable, since: dt.datetime | None, until: dt.datetime | None) -> str:
    """Raw key of an extract, named by the change window it covers.

    The same window over unchanged rows gives the same key and content, which
    the ledger skips. A whole-table extract (no ``updated_at``) has one key.
    """
    if until is None:
        return f"{table.raw_prefix}{table.table}-full.csv"
    start = _as_utc(since).strftime(_WATERMARK_FORMAT) if since else "start"
    return f"{table.raw_prefix}{table.table}-since-{start}-until-{_as_utc(until).strftime(_WATERMARK_FORMAT)}.csv"


def last_watermark(
    table: SourceTable, existing: Iterable[RawFile], rejected_file_ids: Collection[str]
) -> dt.datetime | None:
    """The newest watermark among the table's extracts in the raw bucket that were not rejected."""
    marks = []
    for raw in existing:
        match = _WATERMARK_KEY.search(raw.raw_key)
        if raw.raw_key.startswith(table.raw_prefix) and match and raw.file_id not in rejected_file_ids:
            marks.append(dt.datetime.strptime(match.group(1), _WATERMARK_FORMAT).replace(tzinfo=dt.UTC))
    return max(marks, default=None)


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Naive timestamps in the source are taken as UTC, as in the raw CSVs."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _source_types(cur: Any, table: str) -> dict[str, str]:
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s AND table_schema = ANY (current_schemas(false)) ORDER BY ordinal_position",
        (table,),
    )
    types = dict(cur.fetchall())
    if not types:
        raise SourceTableError(f"source table {table!r} does not exist (or is not on the search_path)")
    return types


def extract_tables(
    source: Any,
    upload: Callable[[Path, str], None],
    existing: Iterable[RawFile],
    rejected_file_ids: Collection[str],
    work_dir: Path | None = None,
) -> list[ExtractedFile]:
    """Extract every mapped table in one snapshot; upload each file once it is complete.

    ``upload(local_path, raw_key)`` puts one file in the raw bucket; ``existing``
    are the raw bucket's files under the source prefixes, for the watermarks.
    """
    existing = list(existing)
    extracted: list[tuple[SourceTable, Path, str, int]] = []
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="music-kpis-extract-") as scratch:
        # Plain SQL for the transaction settings: the hook may hand out a
        # psycopg2 or a psycopg 3 connection.
        source.autocommit = False
        try:
            with source.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                # Timestamps compare and print in UTC whatever the server's zone.
                cur.execute("SET LOCAL TIME ZONE 'UTC'")
                cur.execute("SET LOCAL DateStyle = 'ISO, YMD'")
                for table in load_source_tables():
                    found = _extract_table(cur, table, existing, rejected_file_ids, Path(scratch))
                    if found:
                        extracted.append((table, *found))
        finally:
            source.rollback()  # read only: nothing to keep; ends the snapshot
        files = []
        for table, path, key, rows in extracted:
            upload(path, key)
            log.info("extracted %d row(s) of %s to %s", rows, table.table, key)
            files.append(ExtractedFile(table.dataset, key, rows))
    return files


def _extract_table(
    cur: Any,
    table: SourceTable,
    existing: list[RawFile],
    rejected_file_ids: Collection[str],
    scratch: Path,
) -> tuple[Path, str, int] | None:
    """Copy one table's new rows to a local CSV: (path, raw key, rows), or None when none is new."""
    types = _source_types(cur, table.table)
    columns = present_columns(table, types)
    incremental = table.updated_at in types
    previous = last_watermark(table, existing, rejected_file_ids) if incremental else None
    since = previous - dt.timedelta(minutes=table.lookback_minutes) if previous else None
    key_column = load_schema(table.dataset).key[0]
    context = {
        "table": table.table,
        "columns": columns,
        "key": next(c.source for c in columns if c.name == key_column),
        "incremental": incremental,
        "updated_at": table.updated_at,
        "since": since.isoformat() if since else None,
    }
    cur.execute(render("table_summary.sql", **context))
    rows, newest = cur.fetchone()
    if rows == 0:
        log.info("no rows of %s changed since %s", table.table, since)
        return None
    path = scratch / f"{table.table}.csv"
    with path.open("wb") as out:
        _copy_out(cur, render("extract_table.sql", **context), out)
    if not incremental:
        return path, extract_key(table, None, None), rows
    # Rows without updated_at only: the watermark stays where it was.
    return path, extract_key(table, since, newest or previous or _EPOCH), rows


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _copy_out(cur: Any, statement: str, out: BinaryIO) -> None:
    """Stream ``COPY ... TO STDOUT`` into ``out`` with psycopg2 or psycopg 3."""
    if hasattr(cur, "copy_expert"):
        cur.copy_expert(statement, out)
        return
    with cur.copy(statement) as copy:
        for chunk in copy:
            out.write(chunk)
