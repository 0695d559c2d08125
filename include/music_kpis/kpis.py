"""KPI tables as data: ``include/sql/kpis/<table>.yaml`` (columns) + ``<table>.sql`` (the rows).

From the YAML come the table's DDL, the column list of its INSERT in
refresh_kpis.sql and its export. A KPI table is derived from the loaded
tables, so it needs no migration: when the warehouse's table differs from its
YAML (a column added, a type or nullability changed), ``create_tables``
rebuilds it empty and marks every date with plays dirty (migrations.py), and
the run's ``refresh_kpis`` recomputes them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from include.music_kpis.ddl import column_definition
from include.music_kpis.schemas import SQL_TYPES
from include.music_kpis.spreadsheet import safe_cell_sql

KPI_DIR = Path(__file__).resolve().parents[1] / "sql" / "kpis"


@dataclass(frozen=True)
class KpiColumn:
    name: str
    type: str
    nullable: bool = False
    max_bytes: int | None = None


@dataclass(frozen=True)
class KpiTable:
    name: str
    key: tuple[str, ...]
    columns: tuple[KpiColumn, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def information_schema(self) -> list[tuple[str, str, int | None, str]]:
        """(column, data_type, character_maximum_length, is_nullable) as information_schema.columns has them."""
        return [(c.name, SQL_TYPES[c.type], c.max_bytes, "YES" if c.nullable else "NO") for c in self.columns]

    def ddl(self, backend: str) -> str:
        """CREATE TABLE; on Redshift a copy on every node, sorted by its first key column."""
        columns = [
            column_definition(
                c.name,
                c.type,
                backend=backend,
                nullable=c.nullable,
                max_bytes=c.max_bytes,
                leads_sort_key=c.name == self.key[0],
            )
            for c in self.columns
        ]
        body = ",\n    ".join([*columns, f"PRIMARY KEY ({', '.join(self.key)})"])
        layout = f" DISTSTYLE ALL SORTKEY ({self.key[0]})" if backend == "redshift" else ""
        return f"CREATE TABLE {self.name} (\n    {body}\n){layout}"

    @property
    def identifiers(self) -> list[str]:
        """Every word of its SQL (and of the KPI macros it may include): refresh_kpis.sql
        gives tmp_kpi_track_hours the song columns that some KPI names, and no others."""
        return sorted(_identifiers(KPI_DIR / f"{self.name}.sql") | _identifiers(*KPI_DIR.glob("_*.sql")))

    def export_query(self, backend: str = "postgres") -> str:
        """Every row, sorted by key, text in byte order (Redshift's own; COLLATE "C" on PostgreSQL),
        text cells spreadsheet-safe (spreadsheet.py): the query of the KPI CSVs on both backends."""
        by_type = {c.name: c.type for c in self.columns}
        # Doubles to 6 decimals (contract section 6): Python rounds the rows it writes
        # (exports.csv_value); UNLOAD writes what the query returns, so Redshift rounds.
        rounded = "ROUND({0}, 6) AS {0}" if backend == "redshift" else "{0}"
        columns = ", ".join(
            safe_cell_sql(c) if by_type[c] == "text" else rounded.format(c) if by_type[c] == "double" else c
            for c in self.column_names
        )
        collate = "" if backend == "redshift" else ' COLLATE "C"'
        # Qualified: the sort is on the stored value, not on the output column of the same name.
        order = ", ".join(f"{self.name}.{k}{collate if by_type[k] == 'text' else ''}" for k in self.key)
        return f"SELECT {columns} FROM {self.name} ORDER BY {order}"


def _identifiers(*paths: Path) -> set[str]:
    return {word.lower() for path in paths for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text("utf-8"))}


@cache
def kpi_tables() -> tuple[KpiTable, ...]:
    """Every KPI table, by name."""
    tables = []
    for path in sorted(KPI_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        columns = tuple(KpiColumn(**c) for c in spec["columns"])
        table = KpiTable(spec["table"], tuple(spec["key"]), columns)
        if table.name != path.stem or not (KPI_DIR / f"{table.name}.sql").exists():
            raise ValueError(f"{path}: a KPI table is <table>.yaml with <table>.sql beside it")
        if table.key[0] != "listen_date":
            raise ValueError(f"{path}: KPIs are recomputed by date, so the key starts with listen_date")
        tables.append(table)
    return tuple(tables)


def kpi_table(name: str) -> KpiTable:
    return next(t for t in kpi_tables() if t.name == name)
