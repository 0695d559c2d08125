"""check_streams_keys_unique on a real warehouse, in both its forms (include/music_kpis/quality_checks.py):
Redshift's counts the rows of each key (Redshift does not enforce primary keys: AWS "Defining table
constraints"), PostgreSQL's asks the catalog for the enforced primary key on the fact key."""

from __future__ import annotations

import pytest

from include.music_kpis.migrations import migrate
from include.music_kpis.quality_checks import fact_keys
from include.music_kpis.warehouse import fact_key

PLAY = (
    "INSERT INTO streams (user_id, track_id, listen_time, listen_date, listen_hour) "
    "VALUES (1, 't1', '2026-11-22 10:00', '2026-11-22', 10)"
)


@pytest.fixture
def conn(warehouse):
    conn = warehouse.connect()
    migrate(conn, "postgres")
    conn.commit()
    yield conn
    conn.close()


def keys_unique(conn, backend: str) -> bool:
    """The check's verdict on the date of PLAY, as SQLTableCheckOperator computes it (``copies = 1``)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT MIN(CASE WHEN copies = 1 THEN 1 ELSE 0 END) FROM {fact_keys(backend)} "
            "WHERE listen_date IN ('2026-11-22')"
        )
        return cur.fetchone()[0] == 1


def test_the_fact_tables_primary_key_is_the_fact_key(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'streams'::regclass AND contype = 'p'"
        )
        assert cur.fetchall() == [(f"PRIMARY KEY ({', '.join(fact_key())})",)]


def test_redshift_form_counts_the_rows_of_each_key(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE streams DROP CONSTRAINT streams_pkey")  # as on Redshift: nothing refuses a copy
        cur.execute(PLAY)
        assert keys_unique(conn, "redshift")
        cur.execute(PLAY)
    assert not keys_unique(conn, "redshift")


def test_postgres_form_holds_while_the_primary_key_enforces_the_fact_key(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(PLAY)
        assert keys_unique(conn, "postgres")
        cur.execute("ALTER TABLE streams DROP CONSTRAINT streams_pkey")
        assert not keys_unique(conn, "postgres")
        cur.execute("ALTER TABLE streams ADD PRIMARY KEY (listen_date, user_id, listen_time, track_id)")
        assert not keys_unique(conn, "postgres")  # a key, but not the fact key
        cur.execute(f"ALTER TABLE streams DROP CONSTRAINT streams_pkey, ADD PRIMARY KEY ({', '.join(fact_key())})")
    assert keys_unique(conn, "postgres")
