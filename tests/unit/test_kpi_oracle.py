"""The KPI oracle against numbers worked out by hand, and the sample generator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from localdev.sample_data import generate
from tests.helpers.kpi_oracle import (
    GENRE_COLUMNS,
    HOURLY_COLUMNS,
    assert_kpis_equal,
    expected_tables,
    parse_timestamp,
    read_kpi_csv,
)

D1, D2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def tiny_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    write(
        raw / "metadata/users/users_1.csv",
        " User_ID ,user_name,USER_AGE,user_country,created_at\n"
        "1,Ann,30,US,2023-01-05\n"
        "2, Bob ,25,BR,2023-02-01 10:00:00\n"
        "3,Cid,40,DE,2022-12-31\n",
    )
    # A later file wins over an earlier one.
    write(
        raw / "metadata/users/users_2.csv",
        "user_id,user_name,user_age,user_country,created_at\n3,Cid,41,AT,2022-12-31\n",
    )
    write(
        raw / "metadata/songs/songs.csv",
        ",track_id,artists,album_name,track_name,popularity,duration_ms,explicit,danceability,track_genre\n"
        "0,rTrack,Cee,Al,Old,99,100000,false,0.1,jazz\n"
        "1,aTrack,alt-J,Al,One,50,200000,False,0.5, Pop\n"
        "2,Ztrack,Björk,Al,Two,71,181000,true,0.6,POP\n"
        "3,rTrack,Cee,,Three,30,240000,0,,Rock \n",  # the last row wins
    )
    write(
        raw / "streams/a.csv",
        "user_id,track_id,listen_time\n"
        "1,aTrack,2024-03-01 10:15:00\n"
        "2,aTrack,2024-03-01T10:30:00Z\n"
        "1,Ztrack,2024-03-01 10:45:00.500000\n"
        "3,Ztrack,2024-03-01T12:40:00+02:00\n"  # 10:40 UTC
        "2,rTrack,2024-03-02T01:30:00+02:00\n"  # 2024-03-01 23:30 UTC
        "3,rTrack,2024-03-01T20:00:00-05:30\n"  # 2024-03-02 01:30 UTC
        "3,rTrack,2024-03-01T20:00:00-05:30\n",  # repeated row
    )
    write(
        raw / "streams/b.csv",
        "user_id,track_id,listen_time\n"
        "1,aTrack,2024-03-01T10:15:00Z\n"  # the first play again, in another form
        "2,Ztrack,2024-03-02 01:10:00\n"
        "1,NoSuchTrack,2024-03-01 09:00:00\n",  # parked
    )
    return raw


def test_timestamp_forms_become_utc() -> None:
    assert parse_timestamp("2024-03-01 10:15:00") == dt.datetime(2024, 3, 1, 10, 15)
    assert parse_timestamp("2024-03-01 10:15:00.5") == dt.datetime(2024, 3, 1, 10, 15, 0, 500000)
    assert parse_timestamp("2024-03-01T10:15:00") == dt.datetime(2024, 3, 1, 10, 15)
    assert parse_timestamp("2024-03-01T10:15:00Z") == dt.datetime(2024, 3, 1, 10, 15)
    assert parse_timestamp("2024-03-02T01:30:00+02:00") == dt.datetime(2024, 3, 1, 23, 30)
    assert parse_timestamp("2024-03-01T20:00:00-05:30") == dt.datetime(2024, 3, 2, 1, 30)
    for bad in ("2024-03-02 25:61:00", "yesterday", "2024-03-01 10:15:00Z", "2024-02-30 00:00:00"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_tables_follow_the_loading_rules(tiny_raw: Path) -> None:
    oracle = expected_tables(tiny_raw)
    assert oracle.users[2]["user_name"] == "Bob"
    assert oracle.users[2]["created_at"] == dt.date(2023, 2, 1)
    assert (oracle.users[3]["user_age"], oracle.users[3]["user_country"]) == (41, "AT")
    assert sorted(oracle.songs) == ["Ztrack", "aTrack", "rTrack"]
    assert oracle.songs["rTrack"] == {
        "track_id": "rTrack",
        "artists": "Cee",
        "album_name": None,
        "track_name": "Three",
        "popularity": 30,
        "duration_ms": 240000,
        "duration_sec": 240.0,
        "explicit": False,
        "danceability": None,
        "track_genre": "rock",
    }
    assert oracle.songs["aTrack"]["track_genre"] == "pop"
    assert oracle.streams == {
        (1, "aTrack", dt.datetime(2024, 3, 1, 10, 15)),
        (2, "aTrack", dt.datetime(2024, 3, 1, 10, 30)),
        (1, "Ztrack", dt.datetime(2024, 3, 1, 10, 45, 0, 500000)),
        (3, "Ztrack", dt.datetime(2024, 3, 1, 10, 40)),
        (2, "rTrack", dt.datetime(2024, 3, 1, 23, 30)),
        (3, "rTrack", dt.datetime(2024, 3, 2, 1, 30)),
        (2, "Ztrack", dt.datetime(2024, 3, 2, 1, 10)),
    }
    assert oracle.parked_streams == {(1, "NoSuchTrack", dt.datetime(2024, 3, 1, 9, 0))}
    assert oracle.repeated_stream_rows == 2
    assert oracle.quarantined_rows == {"users": 0, "songs": 0, "streams": 0}
    assert oracle.rejected_files == []


def test_genre_kpis_by_hand(tiny_raw: Path) -> None:
    # (D1, pop): aTrack x2 (pop 50, 200 s), Ztrack x2 (pop 71, 181 s); the tie goes
    # to "Ztrack" because "Z" < "a" in byte order.
    expected = [
        {
            "listen_date": D1,
            "track_genre": "pop",
            "total_plays": 4,
            "unique_listeners": 3,
            "avg_popularity": 60.5,
            "avg_duration_sec": 190.5,
            "top_track_id": "Ztrack",
        },
        {
            "listen_date": D1,
            "track_genre": "rock",
            "total_plays": 1,
            "unique_listeners": 1,
            "avg_popularity": 30.0,
            "avg_duration_sec": 240.0,
            "top_track_id": "rTrack",
        },
        {
            "listen_date": D2,
            "track_genre": "pop",
            "total_plays": 1,
            "unique_listeners": 1,
            "avg_popularity": 71.0,
            "avg_duration_sec": 181.0,
            "top_track_id": "Ztrack",
        },
        {
            "listen_date": D2,
            "track_genre": "rock",
            "total_plays": 1,
            "unique_listeners": 1,
            "avg_popularity": 30.0,
            "avg_duration_sec": 240.0,
            "top_track_id": "rTrack",
        },
    ]
    assert expected_tables(tiny_raw).genre_kpis == expected


def test_hourly_kpis_by_hand(tiny_raw: Path) -> None:
    # (D1, 10): alt-J x2 and Björk x2 tie; "B" < "a" in byte order.
    # (D2, 1): Cee x1 and Björk x1 tie.
    expected = [
        {
            "listen_date": D1,
            "listen_hour": 10,
            "unique_listeners": 3,
            "total_plays": 4,
            "unique_tracks": 2,
            "track_diversity_index": 0.5,
            "top_artist": "Björk",
        },
        {
            "listen_date": D1,
            "listen_hour": 23,
            "unique_listeners": 1,
            "total_plays": 1,
            "unique_tracks": 1,
            "track_diversity_index": 1.0,
            "top_artist": "Cee",
        },
        {
            "listen_date": D2,
            "listen_hour": 1,
            "unique_listeners": 2,
            "total_plays": 2,
            "unique_tracks": 2,
            "track_diversity_index": 1.0,
            "top_artist": "Björk",
        },
    ]
    assert expected_tables(tiny_raw).hourly_kpis == expected


def test_read_kpi_csv_and_compare(tiny_raw: Path, tmp_path: Path) -> None:
    oracle = expected_tables(tiny_raw)
    genre_csv = tmp_path / "genre_kpis.csv"
    genre_csv.write_text(
        ",".join(GENRE_COLUMNS)
        + "\n2024-03-01,pop,4,3,60.50,190.504,Ztrack\n2024-03-01,rock,1,1,30,240,rTrack\n"
        + "2024-03-02,pop,1,1,71.0,181.0,Ztrack\n2024-03-02,rock,1,1,30.0,240.0,rTrack\n",
        encoding="utf-8",
    )
    actual = read_kpi_csv(genre_csv)
    assert actual[0]["listen_date"] == D1 and actual[0]["total_plays"] == 4
    assert_kpis_equal(actual, oracle.genre_kpis)

    hourly_csv = tmp_path / "hourly_kpis.csv"
    hourly_csv.write_text(
        ",".join(HOURLY_COLUMNS) + "\n2024-03-01,10,3,4,2,0.5,alt-J\n2024-03-01,23,1,1,1,1.0,Cee\n",
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match="keys"):
        assert_kpis_equal(read_kpi_csv(hourly_csv), oracle.hourly_kpis)
    with pytest.raises(AssertionError, match=r"listen_hour': 10.*top_artist: actual 'alt-J', expected 'Björk'"):
        assert_kpis_equal(read_kpi_csv(hourly_csv), oracle.hourly_kpis[:2])
    off = [dict(oracle.genre_kpis[0], avg_popularity=60.52)]
    with pytest.raises(AssertionError, match="avg_popularity"):
        assert_kpis_equal(off, oracle.genre_kpis[:1])


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generate_is_deterministic(tmp_path: Path) -> None:
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    generate(tmp_path / "c", seed=8)
    first = files_of(tmp_path / "a")
    assert sorted(first) == [
        "metadata/songs/songs.csv",
        "metadata/users/users.csv",
        "streams/streams1.csv",
        "streams/streams2.csv",
        "streams/streams3.csv",
    ]
    assert first == files_of(tmp_path / "b")
    assert first != files_of(tmp_path / "c")
    assert sum(len(body) for body in first.values()) < 100_000
    assert b"\r" not in b"".join(first.values())


def test_clean_sample_passes_every_rule(tmp_path: Path) -> None:
    generate(tmp_path)
    oracle = expected_tables(tmp_path)
    assert sorted(oracle.users) == list(range(1, 61))
    assert len(oracle.songs) == 80
    assert oracle.quarantined_rows == {"users": 0, "songs": 0, "streams": 0}
    assert oracle.rejected_files == [] and not oracle.parked_streams
    assert 1100 < len(oracle.streams) < 1200 and oracle.repeated_stream_rows > 0
    assert all(len(t) == 22 and t.isascii() and t.isalnum() for t in oracle.songs)
    assert len({song["artists"] for song in oracle.songs.values()}) < len(oracle.songs)
    assert len({row["listen_date"] for row in oracle.genre_kpis}) >= 5
    assert len({row["track_genre"] for row in oracle.genre_kpis}) >= 4
    assert len(oracle.hourly_kpis) > 48
    songs_text = (tmp_path / "metadata/songs/songs.csv").read_text(encoding="utf-8")
    assert songs_text.startswith(",track_id,artists,")
    assert any(line.endswith((",POP", ", Pop", ",ROCK", ", Rock ")) for line in songs_text.splitlines())


def test_messy_sample_breaks_a_few_rules(tmp_path: Path) -> None:
    generate(tmp_path, messy=True)
    oracle = expected_tables(tmp_path)
    assert oracle.rejected_files == []
    assert oracle.quarantined_rows == {"users": 2, "songs": 0, "streams": 1}
    assert len(oracle.parked_streams) == 1
    header = (tmp_path / "streams/streams1.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "user_id,track_id,listen_time,device"
