"""A new warehouse is made from schema.sql; migrations bring one of any earlier schema to the same place, once.

Run on the real PostgreSQL warehouse, with the same files Redshift runs (their
Redshift rendering passes tests/sql/test_redshift_gate.py); the Redshift
renderings of the two roads are compared statement by statement.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import psycopg2
import pytest
import sqlglot
from airflow.providers.common.sql.hooks.sql import DbApiHook
from sqlglot import exp

from include.music_kpis.migrations import all_migrations, migrate
from include.music_kpis.warehouse import sql_environment
from tests.conftest import fresh_database
from tests.helpers.dag import all_migration_statements, new_warehouse_statements

FIXTURES = Path(__file__).parent / "fixtures"
PREVIOUS_SCHEMAS = ["create_tables_0.1.sql", "create_tables_before_versions.sql"]
NULLABLE_SINCE_VERSION_3 = {
    ("users", "user_age"),
    ("users", "user_country"),
    ("songs", "popularity"),
    ("songs", "explicit"),
    ("genre_kpis", "avg_popularity"),  # a KPI table: made anew from its YAML
}


def run(conn, text: str) -> None:
    with conn, conn.cursor() as cur:
        for statement in DbApiHook.split_sql_string(text):
            cur.execute(statement)


def rows(conn, query: str) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def create_previous_schema(conn, fixture: str) -> None:
    """A warehouse as an earlier release left it, holding one play of one user and song."""
    run(conn, sql_environment("postgres").from_string((FIXTURES / fixture).read_text()).render())
    run(
        conn,
        """
        INSERT INTO users VALUES (1, 'ann', 30, 'NO', '2025-01-01');
        INSERT INTO songs (track_id, artists, popularity, duration_ms, "explicit", track_genre, duration_sec)
        VALUES ('t1', 'Band', 50, 200000, false, 'pop', 200.0);
        INSERT INTO streams VALUES (1, 't1', '2025-03-01 10:00:00', '2025-03-01', 10);
        INSERT INTO streams VALUES (1, 't1', '2025-03-02 11:00:00', '2025-03-02', 11);
        INSERT INTO genre_kpis VALUES ('2025-03-01', 'pop', 1, 1, 50.0, 200.0, 't1');
        """,
    )


def nullable(conn, table: str, column: str) -> bool:
    ((is_nullable,),) = rows(
        conn,
        f"SELECT is_nullable FROM information_schema.columns WHERE table_name = '{table}' AND column_name = '{column}'",
    )
    return is_nullable == "YES"


@pytest.mark.integration
@pytest.mark.parametrize("fixture", PREVIOUS_SCHEMAS)
def test_previous_schema_is_brought_up_to_date(warehouse, fixture: str) -> None:
    conn = warehouse.connect()
    try:
        create_previous_schema(conn, fixture)
        applied = migrate(conn, "postgres")

        assert [m.version for m in applied] == [m.version for m in all_migrations()]
        assert rows(conn, "SELECT version, name FROM schema_migrations ORDER BY version") == [
            (m.version, m.name) for m in all_migrations()
        ]
        for table, column in NULLABLE_SINCE_VERSION_3:
            assert nullable(conn, table, column), (table, column)
        # The data came through the rebuild, and the RDS path's NULLs now load.
        assert rows(conn, "SELECT user_id, user_name, user_age FROM users") == [(1, "ann", 30)]
        assert rows(conn, "SELECT track_id, popularity, duration_sec FROM songs") == [("t1", 50, 200.0)]
        if fixture == "create_tables_0.1.sql":
            # genre_kpis differed from its YAML (avg_popularity NOT NULL): made anew, every date to recompute.
            assert rows(conn, "SELECT COUNT(*) FROM genre_kpis") == [(0,)]
            assert rows(conn, "SELECT listen_date FROM kpi_dirty_dates ORDER BY 1") == [
                (date(2025, 3, 1),),
                (date(2025, 3, 2),),
            ]
        else:  # already as its YAML says: kept as it was
            assert rows(conn, "SELECT listen_date, avg_popularity FROM genre_kpis") == [(date(2025, 3, 1), 50.0)]
            assert rows(conn, "SELECT COUNT(*) FROM kpi_dirty_dates") == [(0,)]
        run(conn, "INSERT INTO users VALUES (2, 'bo', NULL, NULL, '2025-01-02')")
        ((key,),) = rows(
            conn,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'streams'::regclass AND contype = 'p'",
        )
        assert key == "PRIMARY KEY (listen_date, listen_time, user_id, track_id)"  # migration 6
        assert rows(conn, "SELECT track_id, listen_date FROM song_play_dates ORDER BY listen_date") == [
            ("t1", date(2025, 3, 1)),
            ("t1", date(2025, 3, 2)),
        ]
        assert rows(conn, "SELECT listen_time FROM streams ORDER BY listen_time")[0] == (datetime(2025, 3, 1, 10),)
        assert not _autovacuumed_tables(conn) & STAGING  # migration 7
    finally:
        conn.close()


STAGING = {"stg_files", "stg_users", "stg_songs", "stg_streams"}


def _autovacuumed_tables(conn) -> set[str]:
    """Tables PostgreSQL's autovacuum may work on (no reloption turning it off)."""
    return {
        name
        for (name,) in rows(
            conn,
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' "
            "AND NOT coalesce('autovacuum_enabled=false' = ANY(reloptions), false)",
        )
    }


@pytest.mark.integration
def test_autovacuum_leaves_staging_alone_and_nothing_else(warehouse) -> None:
    """record_batch empties staging with TRUNCATE; an autovacuum of a freshly copied batch is only
    cancelled for that lock after deadlock_timeout (1 s), so staging is never autovacuumed."""
    conn = warehouse.connect()
    try:
        migrate(conn, "postgres")
        tables = {name for (name,) in rows(conn, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        assert tables > STAGING
        assert _autovacuumed_tables(conn) == tables - STAGING
    finally:
        conn.close()


@pytest.mark.integration
def test_second_run_changes_nothing(warehouse) -> None:
    conn = warehouse.connect()
    try:
        assert migrate(conn, "postgres")
        before = rows(conn, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        assert migrate(conn, "postgres") == []
        assert rows(conn, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version") == before
    finally:
        conn.close()


@pytest.mark.integration
def test_failed_migration_leaves_its_changes_out(warehouse) -> None:
    """Each migration is one transaction: a failure keeps the earlier versions and none of its own."""
    conn = warehouse.connect()
    try:
        create_previous_schema(conn, "create_tables_0.1.sql")
        run(conn, "CREATE TABLE songs_v3 (blocker INTEGER)")  # version 3 fails after rebuilding users
        with pytest.raises(psycopg2.errors.DuplicateTable):
            migrate(conn, "postgres")
        assert [v for (v,) in rows(conn, "SELECT version FROM schema_migrations ORDER BY version")] == [1, 2]
        assert not nullable(conn, "users", "user_age")  # the rebuild of users was rolled back with it
        assert rows(conn, "SELECT user_id, user_age FROM users") == [(1, 30)]
    finally:
        conn.close()


# --- the two roads: a new warehouse (schema.sql) and a migrated one ------------------


def catalog(conn) -> dict[str, list]:
    """The schema as PostgreSQL's catalog has it: columns, constraints, indexes, persistence; no generated names."""
    columns = rows(
        conn,
        "SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length, is_nullable, "
        "column_default FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2",
    )
    constraints = rows(
        conn,
        "SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2, 3",
    )
    indexes = rows(
        conn,
        "SELECT tablename, regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY 1, 2",
    )
    # p: logged, u: unlogged (staging, version 5); reloptions: no autovacuum of staging (version 7)
    persistence = rows(
        conn,
        "SELECT relname, relpersistence, reloptions FROM pg_class "
        "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' ORDER BY 1",
    )
    return {"columns": columns, "constraints": constraints, "indexes": indexes, "persistence": persistence}


@pytest.mark.integration
@pytest.mark.parametrize("fixture", PREVIOUS_SCHEMAS)
def test_new_and_migrated_warehouses_have_the_same_schema(postgres, warehouse, fixture: str) -> None:
    migrated = warehouse.connect()
    try:
        create_previous_schema(migrated, fixture)
        migrate(migrated, "postgres")
        with fresh_database(postgres) as empty:
            new = empty.connect()
            try:
                assert [m.version for m in migrate(new, "postgres")] == [m.version for m in all_migrations()]
                assert catalog(new) == catalog(migrated)
            finally:
                new.close()
    finally:
        migrated.close()


def final_tables(statements: list[str]) -> dict[str, str]:
    """table -> its CREATE TABLE as Redshift would hold it after `statements` (quotes and IF NOT EXISTS aside).

    A primary key is compared as the set of its columns: on Redshift it is informational only (AWS
    "Defining table constraints"), so its column order changes nothing there, and migration 6, which
    reorders the fact table's key for PostgreSQL's index, leaves Redshift's declaration as it was."""
    tables: dict[str, exp.Create] = {}
    for statement in statements:
        tree = sqlglot.parse_one(statement, read="redshift")
        if isinstance(tree, exp.Create) and tree.kind == "TABLE":
            tables.setdefault(tree.this.this.name, tree)
        elif isinstance(tree, exp.Drop) and tree.kind == "TABLE":
            for table in tree.args["tables"]:
                tables.pop(table.name, None)
        elif isinstance(tree, exp.Alter) and isinstance(rename := tree.args["actions"][0], exp.AlterRename):
            tables[rename.this.name] = tables.pop(tree.this.name)
        elif not isinstance(tree, exp.Insert):
            raise AssertionError(f"this comparison cannot follow: {statement[:200]}")
    described = {}
    for name, tree in tables.items():
        tree = tree.copy()
        tree.set("exists", False)
        tree.this.this.set("this", exp.to_identifier(name))
        for identifier in tree.find_all(exp.Identifier):
            identifier.set("quoted", False)
        for key in tree.find_all(exp.PrimaryKey):
            key.set("expressions", sorted(key.expressions, key=lambda column: column.sql()))
        described[name] = tree.sql(dialect="redshift", pretty=True)
    return described


def test_new_and_migrated_warehouses_have_the_same_redshift_ddl() -> None:
    """On Redshift too: every table made by schema.sql is declared as the migrations leave it."""
    kpi_and_version_tables = {"genre_kpis", "hourly_kpis", "schema_migrations"}
    new = {
        k: v for k, v in final_tables(new_warehouse_statements("redshift")).items() if k not in kpi_and_version_tables
    }
    migrated = final_tables(all_migration_statements("redshift"))
    assert sorted(new) == sorted(migrated)
    for table in new:
        assert new[table] == migrated[table], table


@pytest.mark.parametrize(
    ("declared", "changed"),
    [("DISTSTYLE EVEN", "DISTSTYLE ALL"), ("PRIMARY KEY (user_id)", "PRIMARY KEY (user_id, user_name)")],
)
def test_redshift_ddl_comparison_sees_a_difference(declared: str, changed: str) -> None:
    migrated = all_migration_statements("redshift")
    assert any(declared in statement for statement in migrated)
    altered = [statement.replace(declared, changed, 1) for statement in migrated]
    assert final_tables(altered) != final_tables(migrated)
