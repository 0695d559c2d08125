"""What the warehouse holds, held against the independent oracle (tests/helpers/kpi_oracle.py)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.kpi_oracle import assert_kpis_equal, expected_tables, read_kpi_csv


def kpis_of(stack, out_dir: Path) -> tuple[list[dict], list[dict]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stack.export(out_dir)
    return read_kpi_csv(out_dir / "genre_kpis.csv"), read_kpi_csv(out_dir / "hourly_kpis.csv")


USER_COLUMNS = ["user_id", "user_name", "user_age", "user_country", "created_at"]
SONG_COLUMNS = [
    "track_id",
    "artists",
    "album_name",
    "track_name",
    "popularity",
    "duration_ms",
    "explicit",
    "track_genre",
]


def assert_warehouse_matches(stack, raw_dir: Path, out_dir: Path, *, reject_threshold: float = 0.05) -> None:
    """Every table and KPI equals the oracle's computation from scratch over raw_dir."""
    expected = expected_tables(raw_dir, reject_threshold=reject_threshold)
    genre, hourly = kpis_of(stack, out_dir)
    assert_kpis_equal(genre, expected.genre_kpis)
    assert_kpis_equal(hourly, expected.hourly_kpis)
    users = {
        r[0]: dict(zip(USER_COLUMNS, r, strict=True))
        for r in stack.query(f"SELECT {', '.join(USER_COLUMNS)} FROM users")
    }
    assert users == {k: {c: v[c] for c in USER_COLUMNS} for k, v in expected.users.items()}
    quoted = ", ".join(f'"{c}"' for c in SONG_COLUMNS)  # "explicit" is reserved on Redshift
    songs = {r[0]: dict(zip(SONG_COLUMNS, r, strict=True)) for r in stack.query(f"SELECT {quoted} FROM songs")}
    assert songs == {k: {c: v[c] for c in SONG_COLUMNS} for k, v in expected.songs.items()}
    streams = {(u, t, ts) for u, t, ts in stack.query("SELECT user_id, track_id, listen_time FROM streams")}
    assert streams == expected.streams
    parked = {(u, t, ts) for u, t, ts in stack.query("SELECT user_id, track_id, listen_time FROM streams_parked")}
    assert parked == expected.parked_streams
