"""A local stand-in for the operational PostgreSQL (Amazon RDS) users and tracks live in.

The local stack seeds it from a raw-bucket-shaped folder (the sample-data
generator's output): ``metadata/users/*.csv`` become rows of ``users`` and
``metadata/songs/*.csv`` rows of ``tracks``, under the first source name each
column has in include/schemas/sources/rds_postgres.yaml (the mapping the
extract reads back). Within the folder the last row of a key wins, as in the
CSV path. A row with a value the source column cannot hold (a non-integer or
missing id) is left out with a warning; values the pipeline's rules reject (a user aged 7)
are kept, so validation sees them as it would in production.

Seeding again updates only rows whose values changed, and moves their
``updated_at``: that is how tests make "a changed row in the source".

docker-compose's seed-source-db runs it against the connection the DAG uses::

    python -m localdev.source_db --data data/sample
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from psycopg2 import extensions
from psycopg2.extras import execute_values

from include.music_kpis.metadata_source import SOURCE_SQL_DIR, render
from include.music_kpis.schemas import SourceTable, load_schema, load_source_tables
from include.music_kpis.settings import SOURCE_CONN_ID
from localdev.local_stack import PostgresTarget, connection_environment

log = logging.getLogger(__name__)

SOURCE_DATABASE = "music_source"


def _text(value: str) -> str | None:
    return value if value.strip() else None


def _integer(value: str) -> int | None:
    return int(value) if value.strip() else None


def _timestamp(value: str) -> dt.datetime:
    text = value.strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _boolean(value: str) -> bool | None:
    spelled = value.strip().lower()
    if spelled in {"true", "1"}:
        return True
    if spelled in {"false", "0"}:
        return False
    if not spelled:
        return None
    raise ValueError(f"not a boolean: {value!r}")


# How the source stores a CSV value, by the dataset column's schema type.
_FROM_CSV: dict[str, Callable[[str], Any]] = {
    "bigint": _integer,
    "integer": _integer,
    "text": _text,
    "boolean": _boolean,
    "date": _timestamp,
}


def _unscaled(scale: int) -> Callable[[str], Decimal]:
    """The inverse of the extract's scaling: duration_ms 183339 is stored as 183.339 (seconds)."""
    return lambda value: Decimal(int(value)) / scale


def _seed_columns(table: SourceTable) -> list[tuple[str, str, Callable[[str], Any]]]:
    """(source column, CSV column, conversion) per mapped column, under its first source name
    (the names include/sql/source/seed_schema.sql creates), key first."""
    types = {column.name: column.type for column in load_schema(table.dataset).columns}
    return [(c.sources[0], c.name, _unscaled(c.scale) if c.scale else _FROM_CSV[types[c.name]]) for c in table.columns]


def _rows(folder: Path, columns: list[tuple[str, str, Callable[[str], Any]]]) -> Iterator[list[Any]]:
    """Rows of every CSV under ``folder`` in key order, converted to the source's columns."""
    for path in sorted(folder.rglob("*.csv"), key=lambda p: p.as_posix().encode()):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for line, record in enumerate(csv.DictReader(handle), start=2):
                record = {(k or "").strip().lower(): v for k, v in record.items()}
                try:
                    row = [convert(record[name] or "") for _, name, convert in columns]
                    if row[0] is None:
                        raise ValueError(f"no {columns[0][1]}")
                    yield row
                except (KeyError, ValueError, InvalidOperation) as error:
                    log.warning("%s line %d left out of the source database: %s", path, line, error)


def _last_per_key(rows: Iterator[list[Any]]) -> list[list[Any]]:
    latest: dict[Any, list[Any]] = {}
    for row in rows:
        latest.pop(row[0], None)  # re-inserted: dict order follows the last occurrence
        latest[row[0]] = row
    return list(latest.values())


def seed_from_raw_folder(conn: extensions.connection, raw_dir: Path) -> dict[str, int]:
    """Create the source tables if needed and upsert the folder's users and songs; rows written per table."""
    written = {}
    with conn, conn.cursor() as cur:
        cur.execute((SOURCE_SQL_DIR / "seed_schema.sql").read_text(encoding="utf-8"))
        for table in load_source_tables():
            columns = _seed_columns(table)
            folder = raw_dir / load_schema(table.dataset).raw_prefix
            rows = _last_per_key(_rows(folder, columns)) if folder.is_dir() else []
            statement = render("seed_upsert.sql", table=table.table, columns=[source for source, _, _ in columns])
            execute_values(cur, statement, rows, page_size=1000)
            written[table.table] = len(rows)
    return written


def seed_source_database(server: PostgresTarget, data: Path) -> dict[str, str]:
    """Create and seed the operational database beside the warehouse (`make demo` with
    METADATA_SOURCE=rds_postgres); the DAG's connection to it, as its environment variable."""
    source = server.create_database(SOURCE_DATABASE)
    conn = source.connect()
    try:
        seeded = seed_from_raw_folder(conn, data)
    finally:
        conn.close()
    print(f"Source database {SOURCE_DATABASE} seeded from {data}: {seeded['users']} users, {seeded['tracks']} tracks")
    return {connection_environment(SOURCE_CONN_ID): source.airflow_connection()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed the operational database's users and tracks from CSVs.")
    parser.add_argument("--data", type=Path, required=True, help="raw-bucket-shaped folder (metadata/users, songs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    # The Airflow connection of the source, as JSON in AIRFLOW_CONN_MUSIC_KPIS_SOURCE.
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}"])
    target = PostgresTarget(conn["host"], int(conn.get("port", 5432)), conn["login"], conn["password"], conn["schema"])
    connection = target.connect()
    try:
        seeded = seed_from_raw_folder(connection, args.data)
    finally:
        connection.close()
    log.info("source database seeded from %s: %s", args.data, seeded)


if __name__ == "__main__":
    main()
