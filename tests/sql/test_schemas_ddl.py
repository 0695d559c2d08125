"""The warehouse DDL agrees with include/schemas/*.yaml, on both backends.

COPY from Parquet maps columns by position, so the staging tables' column
order and types must equal the Parquet files' (derived from the schemas).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from include.music_kpis.outcomes import MANIFEST_SCHEMA
from include.music_kpis.schemas import ARROW_TYPES, SQL_TYPES, all_schemas
from tests.helpers.dag import rendered_steps

ARROW_TO_SQL = {str(arrow): SQL_TYPES[kind] for kind, arrow in ARROW_TYPES.items()}


def expected_tables() -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, information_schema data_type)] the schemas call for."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for schema in all_schemas():
        tables[schema.dataset] = [(name, SQL_TYPES[kind]) for name, kind in schema.warehouse_columns]
        tables[schema.staging_table] = [(f.name, ARROW_TO_SQL[str(f.type)]) for f in schema.staging_arrow_schema]
    tables["stg_files"] = [(f.name, ARROW_TO_SQL[str(f.type)]) for f in MANIFEST_SCHEMA]
    return tables


@pytest.fixture
def ddl_cursor(warehouse) -> Iterator:
    """A cursor on a database where the PostgreSQL rendering of the DDL has run."""
    with pytest.MonkeyPatch.context() as mp:
        ddl = rendered_steps(mp, "postgres")["create_tables"]
    conn = warehouse.connect()
    with conn, conn.cursor() as cur:
        for statement in ddl:
            cur.execute(statement)
        yield cur
    conn.close()


def test_postgres_tables_match_schemas(ddl_cursor) -> None:
    for table, columns in expected_tables().items():
        ddl_cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        assert ddl_cursor.fetchall() == columns, table


def test_text_lengths_match_schemas(ddl_cursor) -> None:
    """VARCHAR(n) in the DDL is the schema's max_bytes, so COPY never truncates or fails."""
    for schema in all_schemas():
        for column in schema.columns:
            if column.type != "text":
                continue
            for table in (schema.dataset, schema.staging_table):
                ddl_cursor.execute(
                    "SELECT character_maximum_length FROM information_schema.columns "
                    "WHERE table_name = %s AND column_name = %s",
                    (table, column.name),
                )
                assert ddl_cursor.fetchone() == (column.max_bytes,), (table, column.name)


REDSHIFT_TYPE_NAMES = {
    "bigint": "BIGINT",
    "integer": "INT",
    "smallint": "SMALLINT",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "character varying": "VARCHAR",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
}


def test_redshift_tables_match_schemas() -> None:
    with pytest.MonkeyPatch.context() as mp:
        ddl = rendered_steps(mp, "redshift")["create_tables"]
    declared = {}
    for statement in ddl:
        tree = sqlglot.parse_one(statement, read="redshift")
        if isinstance(tree, exp.Create) and tree.kind == "TABLE":
            schema = tree.this
            declared[schema.this.name] = [
                (col.name, col.args["kind"].this.name) for col in schema.expressions if isinstance(col, exp.ColumnDef)
            ]
    for table, columns in expected_tables().items():
        assert declared[table] == [(name, REDSHIFT_TYPE_NAMES[kind]) for name, kind in columns], table


def test_parquet_types_are_ones_redshift_copy_maps() -> None:
    supported = {
        pa.int64(),
        pa.int32(),
        pa.int16(),
        pa.float64(),
        pa.bool_(),
        pa.string(),
        pa.date32(),
        pa.timestamp("us"),
    }
    for schema in all_schemas():
        assert {f.type for f in schema.staging_arrow_schema} <= supported
