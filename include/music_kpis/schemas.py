"""Dataset schemas, read from ``include/schemas/*.yaml``.

The YAML files are the single source of truth: validation reads them, the
Parquet files written for COPY follow them column by column, and a test checks
that the warehouse DDL agrees with them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import pyarrow as pa
import yaml

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
DATASETS: tuple[str, ...] = ("users", "songs", "streams")

# Columns every staging row carries after the dataset's own columns: which
# file it came from and its row number there (1 = first data row). They scope
# staging rows to a file, make a retried COPY harmless and give "last row wins".
LINEAGE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("file_id", pa.string()),
    ("source_row", pa.int64()),
)

ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}

# The warehouse type of each schema type, as information_schema reports it on
# PostgreSQL (Redshift uses the same names in the DDL).
SQL_TYPES: dict[str, str] = {
    "bigint": "bigint",
    "integer": "integer",
    "smallint": "smallint",
    "double": "double precision",
    "boolean": "boolean",
    "text": "character varying",
    "date": "date",
    "timestamp": "timestamp without time zone",
}


# What every accepted value must fit, on PostgreSQL, Redshift and in Python
# (the exports read rows back as Python values). Integers: the range of the
# column's warehouse type. Dates and timestamps: Python's years 1..9999 (both
# warehouses reach further: PostgreSQL 4713 BC..294276 AD, Redshift the same
# for TIMESTAMP). Text: valid UTF-8 (checked when decoding), no more bytes than
# the column's max_bytes (Redshift VARCHAR(n) counts bytes), and none of the
# control characters below: neither warehouse can store NUL in a VARCHAR, and
# the other C0 controls are never text in these data sets (tab, LF and CR,
# which a quoted CSV value may hold, are allowed).
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
EARLIEST_TIMESTAMP = dt.datetime(1, 1, 1)
LATEST_TIMESTAMP = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
CONTROL_CHARACTERS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = False
    optional: bool = False
    min: float | None = None
    max: float | None = None
    max_bytes: int | None = None
    lower: bool = False
    # NULL allowed in the warehouse although a file must give a value: a
    # metadata source may lack the column (include/schemas/sources/*.yaml).
    warehouse_nullable: bool = False

    @property
    def accepts_null(self) -> bool:
        return self.nullable or self.optional

    @property
    def null_in_warehouse(self) -> bool:
        return self.accepts_null or self.warehouse_nullable


@dataclass(frozen=True)
class Derived:
    name: str
    type: str
    source: str
    rule: str


@dataclass(frozen=True)
class DatasetSchema:
    dataset: str
    raw_prefix: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    derived: tuple[Derived, ...] = ()
    ignore_leading_columns: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.optional]

    @property
    def warehouse_columns(self) -> list[tuple[str, str]]:
        """(name, schema type) of the warehouse table, in order."""
        return [(c.name, c.type) for c in self.columns] + [(d.name, d.type) for d in self.derived]

    @property
    def staging_arrow_schema(self) -> pa.Schema:
        """Column order and types of the transformed Parquet and the staging table."""
        fields = [pa.field(name, ARROW_TYPES[kind]) for name, kind in self.warehouse_columns]
        fields += [pa.field(name, kind) for name, kind in LINEAGE_COLUMNS]
        return pa.schema(fields)

    @property
    def staging_table(self) -> str:
        return f"stg_{self.dataset}"


def _column(spec: dict) -> Column:
    unknown = set(spec) - set(Column.__dataclass_fields__)
    if unknown or spec["type"] not in ARROW_TYPES:
        raise ValueError(f"bad column spec {spec!r}")
    return Column(**spec)


@cache
def load_schema(dataset: str) -> DatasetSchema:
    raw = yaml.safe_load((SCHEMA_DIR / f"{dataset}.yaml").read_text(encoding="utf-8"))
    return DatasetSchema(
        dataset=raw["dataset"],
        raw_prefix=raw["raw_prefix"],
        key=tuple(raw["key"]),
        columns=tuple(_column(c) for c in raw["columns"]),
        derived=tuple(
            Derived(name=d["name"], type=d["type"], source=d["from"], rule=d["rule"]) for d in raw.get("derived", [])
        ),
        ignore_leading_columns=tuple(raw.get("ignore_leading_columns", [])),
    )


def all_schemas() -> list[DatasetSchema]:
    return [load_schema(name) for name in DATASETS]


# --- metadata from an operational database -------------------------------------


@dataclass(frozen=True)
class SourceColumn:
    """A dataset column and the source-table columns it may come from (first present wins)."""

    name: str
    sources: tuple[str, ...]
    scale: int | None = None
    may_be_missing: bool = False


@dataclass(frozen=True)
class SourceTable:
    """How one source table maps onto a dataset (include/schemas/sources/*.yaml)."""

    dataset: str
    table: str
    raw_prefix: str
    columns: tuple[SourceColumn, ...]
    updated_at: str
    lookback_minutes: int


@cache
def load_source_tables(source: str = "rds_postgres") -> tuple[SourceTable, ...]:
    """The source's tables in dataset order (users before songs)."""
    raw = yaml.safe_load((SCHEMA_DIR / "sources" / f"{source}.yaml").read_text(encoding="utf-8"))
    tables = []
    for dataset in DATASETS:
        spec = raw.get(dataset)
        if spec is None:
            continue
        if not spec["raw_prefix"].startswith(load_schema(dataset).raw_prefix):
            raise ValueError(f"{source}: {dataset} raw_prefix must be under {load_schema(dataset).raw_prefix}")
        columns = tuple(
            SourceColumn(c["name"], tuple(c["from"]), c.get("scale"), c.get("may_be_missing", False))
            for c in spec["columns"]
        )
        schema = load_schema(dataset)
        unknown = {c.name for c in columns} - set(schema.column_names)
        if unknown:
            raise ValueError(f"{source}: {dataset} maps unknown column(s) {sorted(unknown)}")
        not_null = {c.name for c in columns if c.may_be_missing} - {
            c.name for c in schema.columns if c.null_in_warehouse
        }
        if not_null:
            raise ValueError(f"{source}: {dataset} column(s) {sorted(not_null)} may be missing, so must be NULL-able")
        tables.append(
            SourceTable(dataset, spec["table"], spec["raw_prefix"], columns, raw["updated_at"], raw["lookback_minutes"])
        )
    return tuple(tables)


def schema_for_file(dataset: str, raw_key: str) -> DatasetSchema:
    """The rules a raw file is validated against.

    Files extracted from an operational database (under a source's raw_prefix)
    may lack the columns their mapping marks `may_be_missing`: those columns
    are optional and nullable for them. Every other file gets the schema as is.
    """
    schema = load_schema(dataset)
    for table in load_source_tables():
        if table.dataset == dataset and raw_key.startswith(table.raw_prefix):
            relaxed = {c.name for c in table.columns if c.may_be_missing}
            return replace(
                schema,
                columns=tuple(
                    replace(c, nullable=True, optional=True) if c.name in relaxed else c for c in schema.columns
                ),
            )
    return schema
