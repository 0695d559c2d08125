"""Users and tracks from an operational PostgreSQL (metadata_source = rds_postgres).

The source database is a second database on the test PostgreSQL server, seeded
by the sample-data generator; the DAG runs through dag.test() as everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev import outputs
from localdev.local_stack import PostgresTarget
from localdev.sample_data import generate
from localdev.source_db import seed_from_raw_folder
from tests.conftest import Stack, fresh_database
from tests.helpers.kpi_oracle import assert_kpis_equal, genre_kpis, hourly_kpis
from tests.helpers.warehouse_checks import SONG_COLUMNS, USER_COLUMNS, kpis_of

pytestmark = pytest.mark.integration


def seed(source: PostgresTarget, raw_dir: Path) -> None:
    conn = source.connect()
    try:
        seed_from_raw_folder(conn, raw_dir)
    finally:
        conn.close()


def execute(target: PostgresTarget, statement: str, args: tuple = ()) -> None:
    conn = target.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, args)
    finally:
        conn.close()


def upload_streams(stack: Stack, raw_dir: Path) -> None:
    for path in sorted((raw_dir / "streams").glob("*.csv")):
        stack.put(f"streams/{path.name}", path.read_bytes())


def dimensions(stack: Stack) -> tuple[list[tuple], list[tuple]]:
    quoted = ", ".join(f'"{c}"' for c in SONG_COLUMNS)
    users = stack.query(f"SELECT {', '.join(USER_COLUMNS)} FROM users ORDER BY user_id")
    songs = stack.query(f"SELECT {quoted} FROM songs ORDER BY track_id")
    return users, songs


def assert_kpis_from_scratch(stack: Stack, tmp_path: Path) -> None:
    """The KPI tables equal a computation in Python from the warehouse's current tables."""
    songs = {
        r[0]: {"artists": r[1], "popularity": r[2], "duration_ms": r[3], "track_genre": r[4]}
        for r in stack.query("SELECT track_id, artists, popularity, duration_ms, track_genre FROM songs")
    }
    streams = stack.query("SELECT user_id, track_id, listen_time FROM streams")
    genre, hourly = kpis_of(stack, tmp_path / "kpis")
    assert_kpis_equal(genre, genre_kpis(streams, songs))
    assert_kpis_equal(hourly, hourly_kpis(streams, songs))


@pytest.fixture
def sample_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    generate(raw)
    return raw


@pytest.fixture
def csv_stack(moto_endpoint: str, postgres: PostgresTarget, airflow_db: None) -> Iterator[Stack]:
    """A second stack (own buckets and warehouse) for the CSV path, activated on demand."""
    with fresh_database(postgres) as warehouse:
        yield Stack.create(moto_endpoint, warehouse)


def test_rds_source_gives_the_same_warehouse_as_csv(
    stack: Stack,
    csv_stack: Stack,
    source_database: PostgresTarget,
    sample_raw: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as csv_env:
        csv_stack.activate(csv_env)
        csv_stack.upload(sample_raw)
        assert csv_stack.run_dag().state == "success"
    csv_kpis = kpis_of(csv_stack, tmp_path / "csv")

    seed(source_database, sample_raw)
    stack.use_rds_source(source_database, monkeypatch)
    upload_streams(stack, sample_raw)
    run = stack.run_dag()

    assert run.state == "success"
    loaded = run.summary["loaded_files"]
    assert [k for k in loaded if k.startswith("metadata/")] == [
        k for k in loaded if k.startswith(("metadata/users/rds/users-since-start-", "metadata/songs/rds/tracks-"))
    ]
    assert len([k for k in loaded if k.startswith("metadata/")]) == 2
    assert dimensions(stack) == dimensions(csv_stack)
    rds_kpis = kpis_of(stack, tmp_path / "rds")
    assert_kpis_equal(rds_kpis[0], csv_kpis[0])
    assert_kpis_equal(rds_kpis[1], csv_kpis[1])


def test_changed_source_row_is_upserted_by_the_next_run(
    stack: Stack, source_database: PostgresTarget, sample_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(source_database, sample_raw)
    for table, key in (("users", "user_id"), ("tracks", "track_id")):
        # Rows last changed long ago; the newest of them sets the watermark (2020-01-01).
        execute(source_database, f"UPDATE {table} SET updated_at = '2019-06-01 00:00:00+00'")
        execute(
            source_database,
            f"UPDATE {table} SET updated_at = '2020-01-01 00:00:00+00' WHERE {key} = (SELECT MIN({key}) FROM {table})",
        )
    stack.use_rds_source(source_database, monkeypatch)
    upload_streams(stack, sample_raw)
    assert stack.run_dag().state == "success"
    ((track_id, genre),) = stack.query(
        "SELECT s.track_id, s.track_genre FROM songs s JOIN streams p USING (track_id) "
        "GROUP BY s.track_id, s.track_genre ORDER BY COUNT(*) DESC, s.track_id LIMIT 1"
    )
    new_genre = "jazz" if genre != "jazz" else "rock"

    execute(
        source_database,
        "UPDATE tracks SET genre = %s, popularity = 3, updated_at = now() WHERE track_id = %s",
        (new_genre.upper(), track_id),
    )
    execute(source_database, "UPDATE users SET country = 'XX', updated_at = now() WHERE user_id = 1")
    run = stack.run_dag()

    assert run.state == "success"
    # Incremental: the second extract holds the changed rows only.
    extracts = [k for k in run.summary["loaded_files"] if k.startswith("metadata/")]
    assert [k.split("/")[1] for k in extracts] == ["songs", "users"]
    for key, table in zip(extracts, ("tracks", "users"), strict=True):
        # From the watermark minus the 10-minute look-back: the changed row and the watermark's own row.
        assert "-since-20191231T235000.000000Z-until-" in key
        changed = {line.split(",")[0] for line in stack.raw_object(key).splitlines()[1:]}
        id_column = "track_id" if table == "tracks" else "user_id"
        since_look_back = f"SELECT {id_column} FROM {table} WHERE updated_at > '2019-12-31 23:50+00'"
        expected = outputs.query(source_database, since_look_back)
        assert changed == {str(value) for (value,) in expected}, key
        assert len(changed) <= 2
    assert stack.query("SELECT track_genre, popularity FROM songs WHERE track_id = %s", (track_id,)) == [(new_genre, 3)]
    assert stack.query("SELECT user_country FROM users WHERE user_id = 1") == [("XX",)]
    # The plays of the changed track moved genre in the KPIs of every date they touch.
    assert_kpis_from_scratch(stack, tmp_path)


def test_columns_the_source_lacks_are_null_and_averages_use_known_values(
    stack: Stack, source_database: PostgresTarget, sample_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Source tables without age, country, popularity, album, explicit or updated_at."""
    seed(source_database, sample_raw)
    for table, column in [
        ("users", "age"),
        ("users", "country"),
        ("users", "updated_at"),
        ("tracks", "popularity"),
        ("tracks", "album"),
        ("tracks", "explicit"),
        ("tracks", "updated_at"),
    ]:
        execute(source_database, f"ALTER TABLE {table} DROP COLUMN {column}")
    stack.use_rds_source(source_database, monkeypatch)
    upload_streams(stack, sample_raw)

    first = stack.run_dag()
    assert first.state == "success"
    assert first.summary["quarantined_rows"] == {"users": 0, "songs": 0, "streams": 0}
    assert "metadata/users/rds/users-full.csv" in first.summary["loaded_files"]
    assert stack.query("SELECT COUNT(*), COUNT(user_age), COUNT(user_country) FROM users")[0][1:] == (0, 0)
    assert stack.query('SELECT COUNT(popularity), COUNT(album_name), COUNT("explicit") FROM songs') == [(0, 0, 0)]
    assert stack.query("SELECT COUNT(*) FROM genre_kpis WHERE avg_popularity IS NOT NULL") == [(0,)]
    assert_kpis_from_scratch(stack, tmp_path)

    # Unchanged whole-table extracts keep their content: the next run skips them.
    second = stack.run_dag()
    assert second.state == "success"
    assert {"metadata/users/rds/users-full.csv", "metadata/songs/rds/tracks-full.csv"} <= set(
        second.summary["skipped_files"]
    )


def test_a_failed_extract_leaves_no_file_behind(
    stack: Stack, source_database: PostgresTarget, sample_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tracks lacks a required column: users, read first, is not uploaded either."""
    seed(source_database, sample_raw)
    execute(source_database, "ALTER TABLE tracks DROP COLUMN genre")
    stack.use_rds_source(source_database, monkeypatch)

    run = stack.run_dag()

    assert run.state == "failed"
    assert stack.raw_keys("metadata/") == []
    assert stack.query("SELECT COUNT(*) FROM users") == [(0,)]
