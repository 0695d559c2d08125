"""Every row and header rule of contract sections 2 and 3, on good and bad rows."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from include.music_kpis.csv_reader import raw_records
from include.music_kpis.schemas import load_schema
from include.music_kpis.validation import FileRejected, plan_header, validate_chunk

USERS = ["user_id", "user_name", "user_age", "user_country", "created_at"]
SONGS = ["track_id", "artists", "album_name", "track_name", "popularity", "duration_ms", "explicit", "track_genre"]
STREAMS = ["user_id", "track_id", "listen_time"]


def run(dataset: str, header: list[str], rows: list[list[str]]):
    schema = load_schema(dataset)
    frame = pa.table({f"c{i}": pa.array([r[i] for r in rows], pa.string()) for i in range(len(header))})
    plan = plan_header(header, schema)
    return validate_chunk(
        frame, schema, plan, raw_key=f"{dataset}/f.csv", file_id="f" * 32, source_rows=range(1, len(rows) + 1)
    )


def good_rows(result) -> list[dict]:
    return result.good.to_pylist()


def reasons(result) -> dict[int, str]:
    return {r["source_row"]: r["reason"] for r in result.rejected.to_pylist()}


def one_user(**overrides: str) -> list[str]:
    row = {"user_id": "1", "user_name": "Ann", "user_age": "30", "user_country": "US", "created_at": "2024-01-01"}
    row.update(overrides)
    return [row[c] for c in USERS]


def one_song(**overrides: str) -> list[str]:
    row = {
        "track_id": "t1",
        "artists": "A",
        "album_name": "Al",
        "track_name": "T",
        "popularity": "50",
        "duration_ms": "200000",
        "explicit": "false",
        "track_genre": "pop",
    }
    row.update(overrides)
    return [row[c] for c in SONGS]


# --- headers ---------------------------------------------------------------


def test_header_names_are_trimmed_and_lower_cased() -> None:
    result = run("streams", [" User_ID ", "TRACK_ID", "Listen_Time  "], [["1", "t", "2024-01-01 00:00:00"]])
    assert good_rows(result)[0]["user_id"] == 1


def test_unknown_columns_are_dropped() -> None:
    plan = plan_header(["user_id", "track_id", "listen_time", "device"], load_schema("streams"))
    assert plan.dropped == ["device"]
    result = run("streams", ["user_id", "track_id", "listen_time", "device"], [["1", "t", "2024-01-01 00:00:00", "x"]])
    assert "device" not in result.good.column_names


def test_missing_required_column_rejects_the_file() -> None:
    with pytest.raises(FileRejected, match=r"missing required column.*listen_time"):
        plan_header(["user_id", "track_id"], load_schema("streams"))


def test_optional_audio_columns_may_be_absent_or_present() -> None:
    result = run("songs", SONGS, [one_song()])
    assert good_rows(result)[0]["tempo"] is None
    result = run("songs", [*SONGS, "tempo", "Energy"], [[*one_song(), "120.5", "0.3"]])
    assert good_rows(result)[0]["tempo"] == 120.5 and good_rows(result)[0]["energy"] == 0.3


def test_audio_column_must_be_numeric_when_present() -> None:
    result = run("songs", [*SONGS, "tempo"], [[*one_song(), "fast"]])
    assert reasons(result) == {1: "tempo: not a number (got 'fast')"}


@pytest.mark.parametrize("index", ["", "Unnamed: 0", "id", "ID"])
def test_leading_index_column_is_ignored(index: str) -> None:
    plan = plan_header([index, *SONGS], load_schema("songs"))
    assert plan.dropped == [] and 0 not in plan.columns


# --- users -----------------------------------------------------------------


def test_good_user_is_typed_and_trimmed() -> None:
    (row,) = good_rows(run("users", USERS, [one_user(user_name="  Ann  ", user_country=" US ")]))
    assert row["user_name"] == "Ann" and row["user_country"] == "US"
    assert row["created_at"] == dt.date(2024, 1, 1)
    assert row["source_row"] == 1 and row["file_id"] == "f" * 32


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"user_id": "0"}, "user_id: below 1 (got '0')"),
        ({"user_id": "-4"}, "user_id: below 1 (got '-4')"),
        ({"user_id": "1.5"}, "user_id: not an integer (got '1.5')"),
        ({"user_id": "abc"}, "user_id: not an integer (got 'abc')"),
        ({"user_id": ""}, "user_id: missing required value"),
        ({"user_name": "   "}, "user_name: missing required value"),
        ({"user_age": "12"}, "user_age: outside 13..120 (got '12')"),
        ({"user_age": "121"}, "user_age: outside 13..120 (got '121')"),
        ({"user_country": ""}, "user_country: missing required value"),
        ({"created_at": "yesterday"}, "created_at: not a date or accepted timestamp (got 'yesterday')"),
        ({"created_at": "2024-02-30"}, "created_at: not a date or accepted timestamp (got '2024-02-30')"),
    ],
)
def test_bad_user_rows(overrides: dict, reason: str) -> None:
    result = run("users", USERS, [one_user(), one_user(**{"user_id": "2", **overrides})])
    assert reasons(result) == {2: reason}
    assert [r["user_id"] for r in good_rows(result)] == [1]


@pytest.mark.parametrize("age", ["13", "120", " 40 "])
def test_age_bounds_are_inclusive(age: str) -> None:
    assert good_rows(run("users", USERS, [one_user(user_age=age)]))[0]["user_age"] == int(age)


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("2024-03-05", dt.date(2024, 3, 5)),
        ("2024-03-05 23:59:59", dt.date(2024, 3, 5)),
        ("2024-03-05T23:30:00-02:00", dt.date(2024, 3, 6)),  # UTC date
        ("2024-03-05T00:30:00+02:00", dt.date(2024, 3, 4)),
    ],
)
def test_created_at_becomes_a_utc_date(text: str, date: dt.date) -> None:
    assert good_rows(run("users", USERS, [one_user(created_at=text)]))[0]["created_at"] == date


def test_first_broken_rule_is_the_reason() -> None:
    result = run("users", USERS, [one_user(user_id="x", user_age="7")])
    assert reasons(result) == {1: "user_id: not an integer (got 'x')"}


def test_rejected_row_keeps_its_raw_record() -> None:
    result = run("users", USERS, [one_user(user_age="7")])
    (rejected,) = result.rejected.to_pylist()
    assert rejected["raw_key"] == "users/f.csv"
    assert json.loads(rejected["record"])["user_age"] == "7"


# --- songs -----------------------------------------------------------------


def test_good_song_is_normalised() -> None:
    (row,) = good_rows(run("songs", SONGS, [one_song(track_genre="  Hip-Hop ", artists=" A;B ", duration_ms="123456")]))
    assert row["track_genre"] == "hip-hop"
    assert row["artists"] == "A;B"
    assert row["duration_sec"] == pytest.approx(123.456)


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("FALSE", False), ("True", True), ("1", True), ("0", False)]
)
def test_explicit_booleans(text: str, value: bool) -> None:
    assert good_rows(run("songs", SONGS, [one_song(explicit=text)]))[0]["explicit"] is value


def test_album_and_track_name_are_nullable() -> None:
    (row,) = good_rows(run("songs", SONGS, [one_song(album_name="", track_name=" ")]))
    assert row["album_name"] is None and row["track_name"] is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"track_id": ""}, "track_id: missing required value"),
        ({"artists": ""}, "artists: missing required value"),
        ({"popularity": "101"}, "popularity: outside 0..100 (got '101')"),
        ({"popularity": "-1"}, "popularity: outside 0..100 (got '-1')"),
        ({"duration_ms": "0"}, "duration_ms: below 1 (got '0')"),
        ({"duration_ms": "12.5"}, "duration_ms: not an integer (got '12.5')"),
        ({"explicit": "yes"}, "explicit: not a boolean (true/false/1/0) (got 'yes')"),
        ({"explicit": ""}, "explicit: missing required value"),
        ({"track_genre": ""}, "track_genre: missing required value"),
        ({"track_id": "x" * 257}, "track_id: longer than 256 bytes"),
    ],
)
def test_bad_song_rows(overrides: dict, reason: str) -> None:
    assert reasons(run("songs", SONGS, [one_song(**overrides)])) == {1: reason}


def test_text_limit_counts_utf8_bytes() -> None:
    assert good_rows(run("songs", SONGS, [one_song(track_genre="é" * 128)]))  # 256 bytes
    assert reasons(run("songs", SONGS, [one_song(track_genre="é" * 129)])) == {1: "track_genre: longer than 256 bytes"}


# --- streams ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-05-01 10:15:30", dt.datetime(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01 10:15:30.123456", dt.datetime(2024, 5, 1, 10, 15, 30, 123456)),
        ("2024-05-01 10:15:30.5", dt.datetime(2024, 5, 1, 10, 15, 30, 500000)),
        ("2024-05-01T10:15:30", dt.datetime(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T10:15:30Z", dt.datetime(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T10:15:30.25Z", dt.datetime(2024, 5, 1, 10, 15, 30, 250000)),
        ("2024-05-01T10:15:30+02:00", dt.datetime(2024, 5, 1, 8, 15, 30)),
        ("2024-05-01T01:15:30+02:00", dt.datetime(2024, 4, 30, 23, 15, 30)),
        ("2024-05-01T22:45:00-05:30", dt.datetime(2024, 5, 2, 4, 15, 0)),
    ],
)
def test_accepted_timestamp_forms(text: str, utc: dt.datetime) -> None:
    (row,) = good_rows(run("streams", STREAMS, [["7", "t", text]]))
    assert row["listen_time"] == utc
    assert row["listen_date"] == utc.date()
    assert row["listen_hour"] == utc.hour


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01",
        "2024/05/01 10:00:00",
        "01-05-2024 10:00:00",
        "2024-05-01 10:00:00Z",  # an offset needs the T form
        "2024-05-01T25:00:00",
        "2024-05-01 24:00:00",
        "2024-02-30 10:00:00",
        "2023-02-29T10:00:00Z",
        "2024-05-01T10:60:00",
        "2024-13-01T10:00:00",
        "2024-05-01T10:00:00+0200",
        "1714558530",
        "now",
    ],
)
def test_bad_timestamps_are_rejected(text: str) -> None:
    result = run("streams", STREAMS, [["7", "t", text]])
    assert reasons(result) == {1: f"listen_time: not an accepted timestamp (got '{text}')"}


def test_every_timestamp_form_in_one_batch_keeps_its_row() -> None:
    # The usual forms and the offset forms are checked in separate passes over one
    # batch; each value must land back on its own row, bad ones between them.
    good = [
        ("2024-05-01T10:15:30+02:00", dt.datetime(2024, 5, 1, 8, 15, 30)),
        ("2024-05-01 10:15:30", dt.datetime(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T22:45:00.123456789-05:30", dt.datetime(2024, 5, 2, 4, 15, 0, 123456)),
        ("2024-05-01T10:15:30.5Z", dt.datetime(2024, 5, 1, 10, 15, 30, 500000)),
        ("2024-05-01T10:15:30.1234567", dt.datetime(2024, 5, 1, 10, 15, 30, 123456)),
    ]
    bad = ["2024-02-30T10:00:00+01:00", "2024-05-01 10:00:00Z", "2024-02-30 10:00:00", "now"]
    texts = [good[0][0], bad[0], good[1][0], bad[1], good[2][0], bad[2], good[3][0], bad[3], good[4][0]]
    result = run("streams", STREAMS, [[str(i), "t", text] for i, text in enumerate(texts, start=1)])
    assert [(r["source_row"], r["listen_time"]) for r in good_rows(result)] == [
        (row, utc) for row, (_, utc) in zip((1, 3, 5, 7, 9), good, strict=True)
    ]
    assert [r["user_id"] for r in good_rows(result)] == [1, 3, 5, 7, 9]
    assert list(reasons(result)) == [2, 4, 6, 8]  # quarantine rows in source_row order


def test_signed_and_unsigned_integers_in_one_batch() -> None:
    ids = ["5", "+6", "x7", "-8", " 9 ", "0010", "1" * 19, "12"]
    result = run("streams", STREAMS, [[i, "t", "2024-01-01 00:00:00"] for i in ids])
    assert [(r["source_row"], r["user_id"]) for r in good_rows(result)] == [(1, 5), (2, 6), (5, 9), (6, 10), (8, 12)]
    assert reasons(result) == {
        3: "user_id: not an integer (got 'x7')",
        4: "user_id: below 1 (got '-8')",
        7: f"user_id: not an integer (got '{'1' * 19}')",
    }


def test_bad_stream_rows_do_not_stop_good_ones() -> None:
    rows = [["1", "t1", "2024-01-01 00:00:00"], ["0", "t1", "2024-01-01 00:00:00"], ["2", "", "2024-01-01 00:00:00"]]
    result = run("streams", STREAMS, rows)
    assert [r["source_row"] for r in good_rows(result)] == [1]
    assert reasons(result) == {2: "user_id: below 1 (got '0')", 3: "track_id: missing required value"}
    assert result.rows_read == 3


def test_staging_column_order_follows_the_schema() -> None:
    result = run("streams", STREAMS, [["1", "t", "2024-01-01 00:00:00"]])
    assert result.good.column_names == [
        "user_id",
        "track_id",
        "listen_time",
        "listen_date",
        "listen_hour",
        "file_id",
        "source_row",
    ]


def test_formula_like_text_is_kept_as_text() -> None:
    (row,) = good_rows(run("songs", SONGS, [one_song(track_name='=HYPERLINK("http://x")')]))
    assert row["track_name"] == '=HYPERLINK("http://x")'


def test_raw_records_are_the_json_of_each_row() -> None:
    header = ["user_id", "track_id", "user_id", "listen_time"]  # a repeated label keeps its last value
    rows = [['1"\\', "é☃\n\t\x01", "2", ""], [None, "t", "3", "2024-01-01 00:00:00"]]
    columns = [[row[i] for row in rows] for i in range(len(header))]
    expected = [json.dumps(dict(zip(header, [v or "" for v in row], strict=True)), ensure_ascii=False) for row in rows]
    assert raw_records(header, columns) == expected


# --- what the warehouse can hold -------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [("ab\x00cd", "ab\\x00cd"), ("x\x1by", "x\\x1by"), ("a\x7f", "a\\x7f"), ("\x00" * 60, "\\x00" * 40 + "...")],
)
def test_control_characters_in_text_are_rejected_and_shown_escaped(value: str, shown: str) -> None:
    # Neither PostgreSQL nor Redshift can store NUL in a VARCHAR; the reason must not carry it either.
    result = run("streams", STREAMS, [["7", value, "2024-05-01 10:00:00"]])
    assert reasons(result) == {1: f"track_id: contains a control character (got '{shown}')"}
    assert "\x00" not in reasons(result)[1]


def test_tabs_and_newlines_inside_text_are_kept() -> None:
    (row,) = good_rows(run("songs", SONGS, [one_song(track_name="a\tb\nc\r\nd")]))
    assert row["track_name"] == "a\tb\nc\r\nd"


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        "0001-01-01T00:30:00+01:00",  # year 0 in UTC
        "0000-06-01 10:00:00",
    ],
)
def test_timestamps_outside_years_1_to_9999_in_utc_are_rejected(text: str) -> None:
    result = run("streams", STREAMS, [["7", "t", text]])
    assert reasons(result) == {1: f"listen_time: outside 0001-01-01..9999-12-31 in UTC (got '{text}')"}


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("9999-12-31T23:59:59.999999Z", dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
        ("9999-12-31T23:59:59+01:00", dt.datetime(9999, 12, 31, 22, 59, 59)),
        ("0001-01-01 00:00:00", dt.datetime(1, 1, 1)),
    ],
)
def test_timestamps_at_the_edges_of_the_range_are_kept(text: str, utc: dt.datetime) -> None:
    (row,) = good_rows(run("streams", STREAMS, [["7", "t", text]]))
    assert row["listen_time"] == utc


@pytest.mark.parametrize("text", ["0000-01-01", "9999-12-31T23:00:00-02:00"])
def test_dates_outside_years_1_to_9999_are_rejected(text: str) -> None:
    result = run("users", USERS, [one_user(created_at=text)])
    assert reasons(result) == {1: f"created_at: outside 0001-01-01..9999-12-31 in UTC (got '{text}')"}


def test_integers_beyond_the_warehouse_types_are_rejected() -> None:
    # BIGINT holds 19 digits only up to 2**63 - 1: more than 18 digits is never taken.
    result = run("streams", STREAMS, [["9223372036854775808", "t", "2024-05-01 10:00:00"]])
    assert reasons(result) == {1: "user_id: not an integer (got '9223372036854775808')"}
    (row,) = good_rows(run("songs", SONGS, [one_song(duration_ms="999999999999999999")]))
    assert row["duration_ms"] == 999_999_999_999_999_999


def test_a_sliced_batch_keeps_its_values() -> None:
    # The first block of a file is sliced past its header row (csv_reader.read_batches);
    # text that needs no trimming is then handed on as it was read.
    schema = load_schema("songs")
    rows = [SONGS, one_song(album_name="Summer Road"), one_song(track_id="t2", album_name=""), one_song(track_id="t3")]
    frame = pa.table({f"c{i}": pa.array([r[i] for r in rows], pa.string()) for i in range(len(SONGS))}).slice(1)
    result = validate_chunk(
        frame, schema, plan_header(SONGS, schema), raw_key="songs/f.csv", file_id="f" * 32, source_rows=range(1, 4)
    )
    assert [row["album_name"] for row in good_rows(result)] == ["Summer Road", None, "Al"]
