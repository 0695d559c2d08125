"""Column definitions of warehouse DDL, made from the YAML that declares the columns.

Dataset tables (include/schemas/*.yaml) and KPI tables (include/sql/kpis/*.yaml)
render their columns here, so a type, length or nullability is written once,
in YAML. Names come from data, so they are always quoted: a column named after
a Redshift reserved word (``explicit``) needs it, and quoting them all leaves
no list to keep. Encodings on Redshift follow docs/warehouse-design.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from include.music_kpis.schemas import load_schema

_DDL_TYPES = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "double": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_AZ64_TYPES = {"bigint", "integer", "smallint", "date", "timestamp"}


def column_definition(
    name: str,
    kind: str,
    *,
    backend: str,
    nullable: bool,
    max_bytes: int | None = None,
    leads_sort_key: bool = False,
) -> str:
    """One column of CREATE TABLE: ``"name" TYPE [ENCODE ...] [NOT NULL]``.

    ``kind`` is a schema type (bigint, text, ...); text is VARCHAR(max_bytes),
    which Redshift counts in bytes. On Redshift the first sort key column stays
    RAW (its zone maps restrict range scans), integers, dates and timestamps are
    AZ64, and everything else ZSTD.
    """
    if kind == "text":
        if max_bytes is None:
            raise ValueError(f"text column {name!r} needs max_bytes")
        ddl_type = f"VARCHAR({max_bytes})"
    else:
        ddl_type = _DDL_TYPES[kind]
    if backend != "redshift":
        encoding = ""
    elif leads_sort_key:
        encoding = " ENCODE RAW"
    else:
        encoding = " ENCODE AZ64" if kind in _AZ64_TYPES else " ENCODE ZSTD"
    return f'"{name}" {ddl_type}{encoding}{"" if nullable else " NOT NULL"}'


def dataset_columns(
    dataset: str,
    backend: str,
    *,
    staging: bool = False,
    sort_column: str | None = None,
    only: Sequence[str] | None = None,
) -> str:
    """The columns of a dataset's warehouse table, from its schema YAML, in order.

    NOT NULL unless the schema lets the column be NULL in the warehouse (a
    derived column follows the column it comes from). Staging tables hold what
    COPY loaded before any check in SQL, so nothing there is NOT NULL. ``only``
    picks columns, in the schema's order, for a table that repeats some of them.
    """
    schema = load_schema(dataset)
    columns = {c.name: c for c in schema.columns}
    specs = [(c.name, c.type, c.null_in_warehouse, c.max_bytes) for c in schema.columns] + [
        (d.name, d.type, columns[d.source].null_in_warehouse, None) for d in schema.derived
    ]
    return ",\n    ".join(
        column_definition(
            name,
            kind,
            backend=backend,
            nullable=staging or nullable,
            max_bytes=max_bytes,
            leads_sort_key=name == sort_column,
        )
        for name, kind, nullable, max_bytes in specs
        if only is None or name in only
    )
