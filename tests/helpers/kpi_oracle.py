"""An independent plain-Python reading of contract sections 2-5: the expected result.

It reads a raw-bucket-shaped folder (as written by ``sample_data.generate`` or
by hand in a test) the way one run of the pipeline over an empty warehouse
should, and computes both KPI tables from scratch. It imports nothing from the
pipeline, uses only the standard library, and is meant for clean input. Rows
that break a rule are dropped and counted, and a file over the rejection
threshold or missing a required column is dropped as a whole, so messy input
gives a best-effort expectation too.

Public API: :func:`expected_tables` -> :class:`Oracle`, :func:`read_kpi_csv`,
:func:`assert_kpis_equal`.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENRE_COLUMNS = [
    "listen_date",
    "track_genre",
    "total_plays",
    "unique_listeners",
    "avg_popularity",
    "avg_duration_sec",
    "top_track_id",
]
HOURLY_COLUMNS = [
    "listen_date",
    "listen_hour",
    "unique_listeners",
    "total_plays",
    "unique_tracks",
    "track_diversity_index",
    "top_artist",
]
INT_COLUMNS = {"listen_hour", "total_plays", "unique_listeners", "unique_tracks"}
FLOAT_COLUMNS = {"avg_popularity", "avg_duration_sec", "track_diversity_index"}
TOLERANCE = 0.01

PREFIXES = {"users": "metadata/users", "songs": "metadata/songs", "streams": "streams"}
IGNORED_LEADING = {"", "id", "unnamed: 0"}
AUDIO_FEATURES = [
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
]

_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})([ T])(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_INTEGER = re.compile(r"[+-]?\d+")


class RowError(ValueError):
    """A value breaks a rule of contract section 2: the row is quarantined."""


# --- value parsers (contract section 2 and 3) --------------------------------------------


def parse_timestamp(text: str) -> dt.datetime:
    """An accepted timestamp form as a naive UTC datetime.

    ``YYYY-MM-DD HH:MM:SS[.ffffff]`` is UTC; ``YYYY-MM-DDTHH:MM:SS[.ffffff]``
    may end in ``Z`` or ``+HH:MM`` / ``-HH:MM`` and is converted to UTC.
    """
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise RowError(f"bad timestamp {text!r}")
    year, month, day, sep, hour, minute, second, fraction, zone = match.groups()
    if sep == " " and zone is not None:
        raise RowError(f"bad timestamp {text!r}: a zone needs the T form")
    try:
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise RowError(f"bad timestamp {text!r}") from exc
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset_hours, offset_minutes = int(zone[1:3]), int(zone[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            raise RowError(f"bad timestamp {text!r}: offset")
        value -= sign * dt.timedelta(hours=offset_hours, minutes=offset_minutes)
    return value


def parse_date_or_timestamp(text: str) -> dt.date:
    """``created_at``: a date, or any accepted timestamp (its UTC date)."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return parse_timestamp(text).date()
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise RowError(f"bad date {text!r}") from exc


def parse_int(text: str, low: int | None = None, high: int | None = None) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise RowError(f"not an integer: {text!r}")
    value = int(text)
    if (low is not None and value < low) or (high is not None and value > high):
        raise RowError(f"out of range: {value}")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise RowError(f"not a boolean: {text!r}")


def parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise RowError(f"not a number: {text!r}") from exc
    if not math.isfinite(value):
        raise RowError(f"not a finite number: {text!r}")
    return value


# --- reading the raw folder -----------------------------------------------------

Parser = Callable[[str], Any]


@dataclass(frozen=True)
class _Column:
    name: str
    parse: Parser
    nullable: bool = False
    optional: bool = False


def _text(value: str) -> str:
    return value.strip()


USERS_SCHEMA = [
    _Column("user_id", lambda v: parse_int(v, low=1)),
    _Column("user_name", _text),
    _Column("user_age", lambda v: parse_int(v, 13, 120)),
    _Column("user_country", _text),
    _Column("created_at", parse_date_or_timestamp),
]
SONGS_SCHEMA = [
    _Column("track_id", _text),
    _Column("artists", _text),
    _Column("album_name", _text, nullable=True),
    _Column("track_name", _text, nullable=True),
    _Column("popularity", lambda v: parse_int(v, 0, 100)),
    _Column("duration_ms", lambda v: parse_int(v, low=1)),
    _Column("explicit", parse_bool),
    _Column("track_genre", lambda v: v.strip().lower()),
    *(_Column(name, parse_float, nullable=True, optional=True) for name in AUDIO_FEATURES),
]
STREAMS_SCHEMA = [
    _Column("user_id", lambda v: parse_int(v, low=1)),
    _Column("track_id", _text),
    _Column("listen_time", parse_timestamp),
]
SCHEMAS = {"users": USERS_SCHEMA, "songs": SONGS_SCHEMA, "streams": STREAMS_SCHEMA}


@dataclass
class _FileResult:
    rows: list[dict[str, Any]]
    rejected_rows: int
    rejected: bool


def raw_keys(raw_dir: Path, dataset: str) -> list[str]:
    """The raw keys (paths relative to ``raw_dir``, '/'-separated) of a dataset, ascending."""
    base = raw_dir / PREFIXES[dataset]
    if not base.is_dir():
        return []
    keys = [p.relative_to(raw_dir).as_posix() for p in base.rglob("*") if p.is_file() and p.suffix.lower() == ".csv"]
    return sorted(keys, key=lambda key: key.encode("utf-8"))


def _read_file(path: Path, schema: list[_Column], reject_threshold: float) -> _FileResult:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        records = [record for record in csv.reader(handle) if record]
    if not records:
        return _FileResult([], 0, True)
    header = [name.strip().lower() for name in records[0]]
    start = 1 if header and header[0] in IGNORED_LEADING else 0
    positions: dict[str, int] = {}
    for index in range(start, len(header)):
        positions.setdefault(header[index], index)
    if any(not column.optional and column.name not in positions for column in schema):
        return _FileResult([], 0, True)
    present = [column for column in schema if column.name in positions]
    rows: list[dict[str, Any]] = []
    bad = 0
    for record in records[1:]:
        if len(record) != len(header):
            bad += 1
            continue
        try:
            row: dict[str, Any] = {}
            for column in present:
                raw = record[positions[column.name]]
                if raw.strip() == "":
                    if not column.nullable:
                        raise RowError(f"{column.name} is null")
                    row[column.name] = None
                else:
                    row[column.name] = column.parse(raw)
        except RowError:
            bad += 1
            continue
        rows.append(row)
    total = len(records) - 1
    if total and bad / total > reject_threshold:
        return _FileResult([], 0, True)
    return _FileResult(rows, bad, False)


# --- the expected tables ----------------------------------------------------------


@dataclass
class Oracle:
    """What the warehouse should hold after one run over ``raw_dir`` from empty."""

    users: dict[int, dict]
    songs: dict[str, dict]
    streams: set[tuple[int, str, dt.datetime]]
    genre_kpis: list[dict]
    hourly_kpis: list[dict]
    parked_streams: set[tuple[int, str, dt.datetime]] = field(default_factory=set)
    repeated_stream_rows: int = 0
    quarantined_rows: dict[str, int] = field(default_factory=dict)
    rejected_files: list[str] = field(default_factory=list)
    loaded_files: list[str] = field(default_factory=list)


def _top(counts: Counter[str]) -> str:
    """The value with most plays; a tie goes to the smallest value in byte order."""
    return min(counts, key=lambda value: (-counts[value], value.encode("utf-8")))


def _mean_of_known(values: Iterable[int | None]) -> float | None:
    """The mean of the values that are not None; None when none is known."""
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None


def genre_kpis(streams: Iterable[tuple[int, str, dt.datetime]], songs: dict[str, dict]) -> list[dict]:
    groups: dict[tuple[dt.date, str], list[tuple[int, str]]] = defaultdict(list)
    for user_id, track_id, listen_time in streams:
        groups[(listen_time.date(), songs[track_id]["track_genre"])].append((user_id, track_id))
    result = []
    for (listen_date, genre), plays in sorted(groups.items()):
        total = len(plays)
        result.append(
            {
                "listen_date": listen_date,
                "track_genre": genre,
                "total_plays": total,
                "unique_listeners": len({user_id for user_id, _ in plays}),
                "avg_popularity": _mean_of_known(songs[t].get("popularity") for _, t in plays),
                "avg_duration_sec": sum(songs[t]["duration_ms"] / 1000 for _, t in plays) / total,
                "top_track_id": _top(Counter(track_id for _, track_id in plays)),
            }
        )
    return result


def hourly_kpis(streams: Iterable[tuple[int, str, dt.datetime]], songs: dict[str, dict]) -> list[dict]:
    groups: dict[tuple[dt.date, int], list[tuple[int, str]]] = defaultdict(list)
    for user_id, track_id, listen_time in streams:
        groups[(listen_time.date(), listen_time.hour)].append((user_id, track_id))
    result = []
    for (listen_date, hour), plays in sorted(groups.items()):
        total = len(plays)
        unique_tracks = len({track_id for _, track_id in plays})
        result.append(
            {
                "listen_date": listen_date,
                "listen_hour": hour,
                "unique_listeners": len({user_id for user_id, _ in plays}),
                "total_plays": total,
                "unique_tracks": unique_tracks,
                "track_diversity_index": unique_tracks / total,
                "top_artist": _top(Counter(songs[track_id]["artists"] for _, track_id in plays)),
            }
        )
    return result


def expected_tables(raw_dir: Path, *, reject_threshold: float = 0.05) -> Oracle:
    """Read every CSV of ``raw_dir`` (raw bucket layout) and compute the expected tables."""
    raw_dir = Path(raw_dir)
    oracle = Oracle(users={}, songs={}, streams=set(), genre_kpis=[], hourly_kpis=[])
    oracle.quarantined_rows = {dataset: 0 for dataset in SCHEMAS}
    key_columns = {"users": "user_id", "songs": "track_id"}
    candidates: list[tuple[int, str, dt.datetime]] = []
    seen: set[tuple[int, str, dt.datetime]] = set()
    for dataset, schema in SCHEMAS.items():
        for key in raw_keys(raw_dir, dataset):
            read = _read_file(raw_dir / key, schema, reject_threshold)
            if read.rejected:
                oracle.rejected_files.append(key)
                continue
            oracle.loaded_files.append(key)
            oracle.quarantined_rows[dataset] += read.rejected_rows
            if dataset == "streams":
                for row in read.rows:
                    play = (row["user_id"], row["track_id"], row["listen_time"])
                    if play in seen:
                        oracle.repeated_stream_rows += 1
                    else:
                        seen.add(play)
                        candidates.append(play)
            else:
                table = oracle.users if dataset == "users" else oracle.songs
                for row in read.rows:  # within a file the last row wins; later files win
                    table[row[key_columns[dataset]]] = row
    for song in oracle.songs.values():
        song["duration_sec"] = song["duration_ms"] / 1000
    for play in candidates:
        user_id, track_id, _ = play
        if user_id in oracle.users and track_id in oracle.songs:
            oracle.streams.add(play)
        else:
            oracle.parked_streams.add(play)
    oracle.genre_kpis = genre_kpis(oracle.streams, oracle.songs)
    oracle.hourly_kpis = hourly_kpis(oracle.streams, oracle.songs)
    return oracle


# --- comparing with the pipeline's output -------------------------------------------


def _convert(column: str, text: str) -> Any:
    if column == "listen_date":
        return dt.date.fromisoformat(text.strip())
    if column in INT_COLUMNS:
        return int(text)
    if column in FLOAT_COLUMNS:
        return float(text) if text else None  # an average of no known values
    return text


def read_kpi_csv(path: Path) -> list[dict]:
    """A KPI CSV written by the pipeline, as dicts with the oracle's Python types."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if header not in (GENRE_COLUMNS, HOURLY_COLUMNS):
            raise AssertionError(f"{path}: unexpected header {header}")
        rows = []
        for line, record in enumerate(reader, start=2):
            if len(record) != len(header):
                raise AssertionError(f"{path}:{line}: {len(record)} fields, expected {len(header)}")
            try:
                rows.append({column: _convert(column, value) for column, value in zip(header, record, strict=True)})
            except ValueError as exc:
                raise AssertionError(f"{path}:{line}: {exc}") from exc
        return rows


def _key_columns(rows: list[dict]) -> list[str]:
    return ["listen_date", "track_genre" if "track_genre" in rows[0] else "listen_hour"]


def _differs(column: str, actual: Any, expected: Any) -> bool:
    if column in FLOAT_COLUMNS and actual is not None and expected is not None:
        return not abs(float(actual) - float(expected)) <= TOLERANCE + 1e-9
    return actual != expected


def assert_kpis_equal(actual: list[dict], expected: list[dict]) -> None:
    """Same keys in the same (sorted) order, counts and text exact, averages to 0.01."""
    if not actual and not expected:
        return
    keys = _key_columns(expected or actual)
    actual_keys = [tuple(row[c] for c in keys) for row in actual]
    expected_keys = [tuple(row[c] for c in keys) for row in expected]
    if actual_keys != expected_keys:
        missing = sorted(set(expected_keys) - set(actual_keys))
        extra = sorted(set(actual_keys) - set(expected_keys))
        first = next(
            (i for i, (a, e) in enumerate(zip(actual_keys, expected_keys, strict=False)) if a != e),
            min(len(actual_keys), len(expected_keys)),
        )
        raise AssertionError(
            f"KPI keys {keys} differ: {len(actual)} rows, expected {len(expected)}; "
            f"first difference at row {first}: "
            f"actual {actual_keys[first] if first < len(actual_keys) else None}, "
            f"expected {expected_keys[first] if first < len(expected_keys) else None}; "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}"
        )
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if set(got) != set(want):
            raise AssertionError(f"row {index}: columns {sorted(got)}, expected {sorted(want)}")
        wrong = {c: (got[c], want[c]) for c in want if _differs(c, got[c], want[c])}
        if wrong:
            key = dict(zip(keys, expected_keys[index], strict=True))
            detail = ", ".join(f"{c}: actual {a!r}, expected {e!r}" for c, (a, e) in wrong.items())
            raise AssertionError(f"KPI row {index} {key} differs: {detail}")
