"""Versioned warehouse schema: made new from include/sql/schema.sql, or migrated.

The warehouse records the versions it has in ``schema_migrations``. On an
empty warehouse, the DAG's ``create_tables`` task runs schema.sql (the tables
as this version wants them, their columns from the schema YAML) and records
every migration as applied, in one transaction. On a warehouse made earlier
(of any version, or before versions were recorded) it applies the missing
migrations include/sql/migrations/NNNN_<name>.sql, each in one transaction
together with its version row. A second run changes nothing. The same files
serve Redshift and PostgreSQL; the few clauses that differ are templated on
``backend`` like the other SQL files. KPI tables are derived data and have no
migrations: they follow their YAML (include/music_kpis/kpis.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from include.music_kpis.kpis import KpiTable, kpi_tables
from include.music_kpis.warehouse import SQL_DIR, sql_environment

MIGRATIONS_DIR = SQL_DIR / "migrations"
VERSION_TABLE_SQL = "migrations/_schema_migrations.sql"
SCHEMA_SQL = "schema.sql"
# A table every version of the warehouse has had: present means "made earlier".
_ALWAYS_PRESENT_TABLE = "streams"
_FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Migration:
    version: int
    name: str

    @property
    def template(self) -> str:
        return f"migrations/{self.version:04d}_{self.name}.sql"


def all_migrations() -> list[Migration]:
    """Every migration file, by version (versions are 1, 2, 3, ... without gaps)."""
    found = sorted(
        Migration(int(m.group(1)), m.group(2))
        for path in MIGRATIONS_DIR.glob("*.sql")
        if (m := _FILE_NAME.fullmatch(path.name))
    )
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise ValueError(f"migration versions must run 1..n without gaps: {[m.version for m in found]}")
    return found


def rendered_statements(template: str, backend: str) -> list[str]:
    """The statements of one SQL file as the backend runs them."""
    text = sql_environment(backend).get_template(template).render()
    # A file may render to comments only (0002 on Redshift); the splitter of MWAA's
    # common-sql 1.27 returns such comments as statements, which a driver refuses.
    return [s for s in DbApiHook.split_sql_string(text) if _has_code(s)]


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())


def migrate(conn: Any, backend: str) -> list[Migration]:
    """Make a new warehouse or apply the migrations it lacks, each in one transaction; return those applied."""
    applied = []
    try:
        with conn.cursor() as cur:
            for statement in rendered_statements(VERSION_TABLE_SQL, backend):
                cur.execute(statement)
            conn.commit()
            cur.execute("SELECT version FROM schema_migrations")
            present = {row[0] for row in cur.fetchall()}
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = %s",
                (_ALWAYS_PRESENT_TABLE,),
            )
            ((made_earlier,),) = cur.fetchall()
            conn.commit()
            if not present and not made_earlier:
                for statement in rendered_statements(SCHEMA_SQL, backend):
                    cur.execute(statement)
                applied = all_migrations()
                _record(cur, applied)
                conn.commit()
                log.info("New warehouse made at schema version %d", applied[-1].version)
            for migration in all_migrations():
                if migration.version in present or migration in applied:
                    continue
                for statement in rendered_statements(migration.template, backend):
                    cur.execute(statement)
                _record(cur, [migration])
                conn.commit()
                log.info("Warehouse schema migrated to version %d (%s)", migration.version, migration.name)
                applied.append(migration)
        for table in reconcile_kpi_tables(conn, backend):
            log.info("KPI table %s made anew from its YAML; every date is recomputed", table)
    except BaseException:
        conn.rollback()
        raise
    return applied


def _record(cur: Any, migrations: list[Migration]) -> None:
    for migration in migrations:
        cur.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
        )


def rebuild_statements(table: KpiTable, backend: str) -> list[str]:
    """The table made anew from its YAML, and every date with plays marked for recompute."""
    return [
        f"DROP TABLE IF EXISTS {table.name}",
        table.ddl(backend),
        *rendered_statements("_mark_all_dates_dirty.sql", backend),
    ]


def reconcile_kpi_tables(conn: Any, backend: str) -> list[str]:
    """Rebuild each KPI table whose columns differ from its YAML, one transaction each; return their names."""
    rebuilt = []
    with conn.cursor() as cur:
        for table in kpi_tables():
            cur.execute(
                "SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns "
                "WHERE table_name = %s AND table_schema = current_schema() ORDER BY ordinal_position",
                (table.name,),
            )
            if [tuple(row) for row in cur.fetchall()] == table.information_schema():
                continue
            for statement in rebuild_statements(table, backend):
                cur.execute(statement)
            conn.commit()
            rebuilt.append(table.name)
    conn.commit()
    return rebuilt
