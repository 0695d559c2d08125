"""The mapping of operational-database tables onto the users and songs schemas."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from include.music_kpis import schemas
from include.music_kpis.files import RawFile, file_id_for
from include.music_kpis.metadata_source import (
    SourceTableError,
    extract_key,
    last_watermark,
    present_columns,
)
from include.music_kpis.schemas import load_schema, load_source_tables, schema_for_file

USERS, TRACKS = load_source_tables()
UTC = dt.UTC


def test_mapping_covers_every_required_column_and_relaxes_only_missing_ones() -> None:
    assert (USERS.dataset, USERS.table, TRACKS.dataset, TRACKS.table) == ("users", "users", "songs", "tracks")
    for table in (USERS, TRACKS):
        schema = load_schema(table.dataset)
        mapped = {c.name for c in table.columns}
        assert set(schema.required_columns) <= mapped
        relaxed = schema_for_file(table.dataset, f"{table.raw_prefix}x.csv")
        for column, original in zip(relaxed.columns, schema.columns, strict=True):
            may_be_missing = any(c.name == column.name and c.may_be_missing for c in table.columns)
            assert column.accepts_null == (original.accepts_null or may_be_missing), column.name
    # A CSV dropped in the raw bucket keeps every rule of contract section 2.
    assert schema_for_file("users", "metadata/users/users.csv") == load_schema("users")


def test_a_column_a_source_may_lack_must_allow_null_in_the_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    users = load_schema("users")
    strict = replace(users, columns=tuple(replace(c, warehouse_nullable=False) for c in users.columns))
    monkeypatch.setattr(schemas, "load_schema", lambda dataset: strict if dataset == "users" else load_schema(dataset))
    load_source_tables.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"users column\(s\) \['user_age', 'user_country'\] may be missing"):
            load_source_tables()
    finally:
        load_source_tables.cache_clear()


def test_present_columns_take_the_first_source_name_and_skip_what_may_be_missing() -> None:
    types = {"track_id": "text", "artist": "text", "artists": "text", "title": "text", "duration": "numeric"}
    types |= {"genre": "text", "updated_at": "timestamp with time zone"}
    found = {c.name: (c.source, c.scale) for c in present_columns(TRACKS, types)}
    assert found == {
        "track_id": ("track_id", None),
        "artists": ("artist", None),
        "track_name": ("title", None),
        "duration_ms": ("duration", 1000),
        "track_genre": ("genre", None),
    }


def test_a_missing_required_column_names_the_table_and_what_was_looked_for() -> None:
    with pytest.raises(SourceTableError, match=r"'users' has no column for users.user_name \(looked for username"):
        present_columns(USERS, {"user_id": "bigint", "created_at": "date"})


def test_extract_keys_sort_by_window_and_carry_the_watermark() -> None:
    first = extract_key(USERS, None, dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    assert first == "metadata/users/rds/users-since-start-until-20260102T030405.000006Z.csv"
    naive = dt.datetime(2026, 1, 3)  # a timestamp without time zone is taken as UTC
    later = extract_key(USERS, dt.datetime(2026, 1, 2, tzinfo=UTC), naive)
    assert later == "metadata/users/rds/users-since-20260102T000000.000000Z-until-20260103T000000.000000Z.csv"
    assert extract_key(TRACKS, None, None) == "metadata/songs/rds/tracks-full.csv"


def test_watermark_skips_rejected_extracts_and_other_tables() -> None:
    t1 = extract_key(USERS, None, dt.datetime(2026, 1, 1, tzinfo=UTC))
    t2 = extract_key(USERS, dt.datetime(2025, 12, 31, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC))
    other = extract_key(TRACKS, None, dt.datetime(2026, 1, 5, tzinfo=UTC))
    existing = [
        RawFile("users", t1, "e1"),
        RawFile("users", t2, "e2"),
        RawFile("songs", other, "e3"),
        RawFile("users", "metadata/users/rds/notes.csv", "e4"),
    ]
    assert last_watermark(USERS, existing, set()) == dt.datetime(2026, 1, 2, tzinfo=UTC)
    # t2 was rejected: its rows are extracted again from t1's watermark.
    assert last_watermark(USERS, existing, {file_id_for(t2, "e2")}) == dt.datetime(2026, 1, 1, tzinfo=UTC)
    # The same key with new content (another ETag) counts again.
    changed = [RawFile("users", t1, "e1"), RawFile("users", t2, "e9")]
    assert last_watermark(USERS, changed, {file_id_for(t2, "e2")}) == dt.datetime(2026, 1, 2, tzinfo=UTC)
    assert last_watermark(USERS, [], set()) is None
