"""Row and header rules of contract sections 2 and 3, on chunks of raw CSV text.

Every raw value arrives as a string. A chunk is split into typed, normalised
good rows (in the staging column order) and rejected rows, each with one reason
naming the first broken rule: ``"<column>: <rule> (got '<value>')"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.music_kpis.csv_reader import raw_records
from include.music_kpis.reasons import excerpt
from include.music_kpis.schemas import (
    ARROW_TYPES,
    CONTROL_CHARACTERS,
    EARLIEST_TIMESTAMP,
    INTEGER_RANGES,
    LATEST_TIMESTAMP,
    Column,
    DatasetSchema,
)
from include.music_kpis.string_bytes import has_no_edge_whitespace, match_fixed_forms

QUARANTINE_SCHEMA = pa.schema(
    [
        ("raw_key", pa.string()),
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("record", pa.string()),
    ]
)


class FileRejected(Exception):
    """The whole file is rejected; the message says why."""


@dataclass(frozen=True)
class HeaderPlan:
    """How raw header names map onto the schema."""

    header: list[str]  # the labels as written
    columns: dict[int, str]  # header position -> schema column name
    dropped: list[str]  # labels not in the schema (dropped with a warning)
    absent_optional: list[str]  # optional schema columns the file lacks


def plan_header(header: list[str], schema: DatasetSchema) -> HeaderPlan:
    """Match a header after trimming and lower-casing; reject if a required column is missing."""
    known = set(schema.column_names)
    columns: dict[int, str] = {}
    dropped: list[str] = []
    for position, label in enumerate(header):
        name = str(label).strip().lower()
        if position == 0 and (name in schema.ignore_leading_columns or name.startswith("unnamed:")):
            continue
        if name in known and name not in columns.values():
            columns[position] = name
        else:
            dropped.append(str(label))
    missing = [c for c in schema.required_columns if c not in columns.values()]
    if missing:
        raise FileRejected(f"missing required column(s): {', '.join(missing)}")
    absent = [c.name for c in schema.columns if c.optional and c.name not in columns.values()]
    return HeaderPlan(header=list(header), columns=columns, dropped=dropped, absent_optional=absent)


@dataclass
class ChunkResult:
    good: pa.Table  # staging column order, lineage columns included
    rejected: pa.Table  # QUARANTINE_SCHEMA
    rows_read: int


# The accepted timestamp forms in two patterns: the usual ones (no zone, or Z:
# UTC already, nothing to convert) and the rarer +/-HH:MM offsets (hours 00-23,
# minutes 00-59, as the arrow parser takes them), only tried on rows the first
# pattern did not match.
_UTC_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?|T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z?)$"
_OFFSET_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?[+-](?:[01]\d|2[0-3]):[0-5]\d$"
# Every form of _UTC_TIMESTAMP that is 19 or 20 bytes long (D: a digit), nearly all
# rows of a real file: rows of these lengths are settled by their bytes, not the regex.
# tests/unit/test_string_bytes.py checks that the two agree.
_PLAIN_UTC_TIMESTAMPS = (b"DDDD-DD-DD DD:DD:DD", b"DDDD-DD-DDTDD:DD:DD", b"DDDD-DD-DDTDD:DD:DDZ")
_MICROSECONDS = len("2024-01-01T00:00:00.000000")  # longest text the parser takes without cutting
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_PLAIN_DATES = (b"DDDD-DD-DD",)  # _DATE's only form
_INTEGER = r"^[+-]?\d{1,18}$"
_INTEGER_DIGITS = 18
_CONTROL = f"[{CONTROL_CHARACTERS}]"
_DATE_RANGE_RULE = f"outside {EARLIEST_TIMESTAMP.date().isoformat()}..{LATEST_TIMESTAMP.date().isoformat()}"
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?$"


# Built on first use, not at import: pyarrow imports pandas (about 1 s) the first time
# it converts a Python value, and the DAG file, parsed often, imports this module.
@cache
def _timestamp_range() -> tuple[pa.Scalar, pa.Scalar]:
    return pa.scalar(EARLIEST_TIMESTAMP, pa.timestamp("us")), pa.scalar(LATEST_TIMESTAMP, pa.timestamp("us"))


@cache
def _date_range() -> tuple[pa.Scalar, pa.Scalar]:
    return pa.scalar(EARLIEST_TIMESTAMP.date(), pa.date32()), pa.scalar(LATEST_TIMESTAMP.date(), pa.date32())


def _matches(text: pa.Array, pattern: str, plain_forms: tuple[bytes, ...]) -> pa.Array:
    """match_substring_regex(text, pattern), with the rows as long as one of the
    pattern's plain forms settled by their bytes (string_bytes): the regex only
    runs on the others."""
    fixed = match_fixed_forms(text, plain_forms)
    if fixed is None:
        return pc.match_substring_regex(text, pattern)
    matched, settled = fixed
    if not settled.all():
        rest = np.flatnonzero(~settled)
        matched[rest] = pc.match_substring_regex(text.take(rest), pattern).to_numpy(zero_copy_only=False)
    return pa.array(matched)


def _trimmed(text: pa.Array) -> pa.Array:
    """Leading and trailing whitespace removed; the kernel copies every value, so it only
    runs when some value may have any."""
    return text if has_no_edge_whitespace(text) else pc.utf8_trim_whitespace(text)


def _null_where_not(text: pa.Array, ok: pa.Array) -> pa.Array:
    """text, null where not ok, ready for a cast (which skips nulls). Shares text's
    buffers: an if_else would copy every value."""
    if text.null_count or text.offset or ok.null_count or ok.offset:
        return pc.if_else(ok, text, pa.scalar(None, text.type))
    return pa.Array.from_buffers(text.type, len(text), [ok.buffers()[1], *text.buffers()[1:]])


class _Failures:
    """The first broken rule of each row, as an index into `rules` (null = none yet)."""

    def __init__(self, rows: int, known: Sequence[str | None] | None) -> None:
        self.rules: list[tuple[str, str, bool]] = []  # (column, rule, show the value)
        self.first = pa.nulls(rows, pa.int32())
        self.known = list(known) if known is not None else None  # most batches decode cleanly

    def add(self, column: str, failed: pa.Array, rule: str, *, show_value: bool = True) -> None:
        failed = pc.fill_null(failed, False)
        if not pc.any(failed).as_py():
            return
        self.rules.append((column, rule, show_value))
        code = pa.scalar(len(self.rules) - 1, pa.int32())
        self.first = pc.if_else(pc.and_(pc.is_null(self.first), failed), code, self.first)

    def bad_mask(self) -> pa.Array:
        failed = pc.is_valid(self.first)
        if self.known is None:
            return failed
        return pc.or_(failed, pa.array([r is not None for r in self.known], type=pa.bool_()))


def _real_calendar(text: pa.Array, layout: str) -> pa.Array:
    """True where text is a real date/time in layout: no 2024-02-30, no 24:00:00.

    strptime rolls an impossible day over (Feb 30 -> Mar 1), so the value must
    also print back as the same text.
    """
    parsed = pc.strptime(text, layout, "s", error_is_null=True)
    return pc.fill_null(pc.equal(pc.strftime(parsed, layout), text), False)


def _integers(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(int64, ok) for `[+-]?digits`; value undefined where not ok.

    Plain digits (nearly every row) are settled by a cheap kernel; the regex and
    the sign only run on the rest.
    """
    digits = pc.and_(pc.ascii_is_decimal(text), pc.less_equal(pc.binary_length(text), _INTEGER_DIGITS))
    if pc.all(digits).as_py():
        return pc.cast(text, pa.int64()), digits
    values = pc.cast(_null_where_not(text, digits), pa.int64())
    rest = pc.invert(digits)
    others = pc.filter(text, rest)
    others_ok = pc.match_substring_regex(others, _INTEGER)
    # arrow's integer parser takes a leading '-' but not '+'.
    unsigned = pc.utf8_ltrim(pc.if_else(others_ok, others, "0"), characters="+")
    others_values = pc.cast(unsigned, pa.int64())
    return pc.replace_with_mask(values, rest, others_values), pc.replace_with_mask(digits, rest, others_ok)


def _cast_timestamps(text: pa.Array, ok: pa.Array, *, zoned: bool) -> tuple[pa.Array, pa.Array]:
    """Cast the ok rows of one family of forms to UTC-naive timestamp[us]; (values, ok)."""
    longest = pc.max(pc.if_else(ok, pc.binary_length(text), 0)).as_py() or 0
    if longest > _MICROSECONDS:
        text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")  # cut to microseconds
    target = pa.timestamp("us", "UTC") if zoned else pa.timestamp("us")
    try:
        stamps = pc.cast(_null_where_not(text, ok), target)
    except pa.ArrowInvalid:  # rare: an impossible date or time among well-formed text
        base = pc.replace_substring(pc.utf8_slice_codeunits(text, 0, 19), "T", " ")
        ok = pc.and_(ok, _real_calendar(base, "%Y-%m-%d %H:%M:%S"))
        stamps = pc.cast(_null_where_not(text, ok), target)
    return pc.cast(stamps, pa.timestamp("us")), ok


def _utc_timestamps(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(UTC-naive timestamp[us], ok) for the accepted forms; value undefined where not ok."""
    ok = _matches(text, _UTC_TIMESTAMP, _PLAIN_UTC_TIMESTAMPS)
    # A trailing Z says UTC, which is what a naive value here means: drop it, one cast for all.
    stamps, ok = _cast_timestamps(pc.utf8_rtrim(text, characters="Z"), ok, zoned=False)
    if pc.all(ok).as_py():
        return stamps, ok
    rest = pc.invert(ok)
    others = pc.filter(text, rest)
    offset_ok = pc.match_substring_regex(others, _OFFSET_TIMESTAMP)
    if not pc.any(offset_ok).as_py():
        return stamps, ok
    offset_stamps, offset_ok = _cast_timestamps(others, offset_ok, zoned=True)
    return pc.replace_with_mask(stamps, rest, offset_stamps), pc.replace_with_mask(ok, rest, offset_ok)


def _may_hold_control_characters(text: pa.Array) -> bool:
    """False when no byte of the column's data is below 0x20 or 0x7f: then no value
    holds a control character, and the regex (most of this rule's cost) is skipped.
    Looks at the whole data buffer, so a byte outside a sliced array can only cause
    a needless check, never a missed one."""
    data = text.buffers()[2]
    if data is None or data.size == 0:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    return bool(((raw < 0x20) | (raw == 0x7F)).any())


def _add_outside(failures: _Failures, column: str, value: pa.Array, bounds: tuple[pa.Scalar, pa.Scalar]) -> None:
    """Values outside [low, high] fail the range rule; one min/max pass when none is."""
    extremes = pc.min_max(value)
    low, high = extremes["min"], extremes["max"]
    # Compared as arrow scalars: a value past year 9999 has no Python counterpart.
    if not low.is_valid or not (pc.less(low, bounds[0]).as_py() or pc.greater(high, bounds[1]).as_py()):
        return
    outside = pc.or_(pc.less(value, bounds[0]), pc.greater(value, bounds[1]))
    failures.add(column, outside, f"{_DATE_RANGE_RULE} in UTC")


def _parse_column(column: Column, raw: pa.Array, failures: _Failures) -> pa.Array:
    """One column, typed; rows that break a rule are recorded in `failures`."""
    # fill_null copies value by value even when nothing is null (arrow 25): only when needed.
    text = _trimmed(pc.fill_null(raw, "") if raw.null_count else raw)
    empty = pc.equal(pc.binary_length(text), 0)  # far cheaper than comparing strings to ""
    present = pc.invert(empty)
    if not column.accepts_null:
        failures.add(column.name, empty, "missing required value", show_value=False)
    kind = column.type
    if kind == "text":
        value = pc.utf8_lower(text) if column.lower else text
        if _may_hold_control_characters(value):
            failures.add(column.name, pc.match_substring_regex(value, _CONTROL), "contains a control character")
        if column.max_bytes is not None:
            too_long = pc.greater(pc.binary_length(value), column.max_bytes)
            failures.add(column.name, too_long, f"longer than {column.max_bytes} bytes", show_value=False)
        if not column.accepts_null:
            return value  # an empty value failed above, so its row is not kept anyway
        return pc.if_else(present, value, pa.scalar(None, pa.string()))
    if kind == "boolean":
        lowered = pc.utf8_lower(text)
        truthy = pc.is_in(lowered, value_set=pa.array(["true", "1"]))
        known = pc.or_(truthy, pc.is_in(lowered, value_set=pa.array(["false", "0"])))
        failures.add(column.name, pc.and_(present, pc.invert(known)), "not a boolean (true/false/1/0)")
        return pc.if_else(known, truthy, pa.scalar(None, pa.bool_()))
    if kind == "timestamp":
        value, ok = _utc_timestamps(text)
        failures.add(column.name, pc.and_(present, pc.invert(ok)), "not an accepted timestamp")
        value = pc.if_else(ok, value, pa.scalar(None, value.type))
        # An offset can carry 9999-12-31 past the year 9999 (or 0001-01-01 before year 1).
        _add_outside(failures, column.name, value, _timestamp_range())
        return value
    if kind == "date":
        date_ok = _matches(text, _DATE, _PLAIN_DATES)
        try:
            day = pc.cast(_null_where_not(text, date_ok), pa.date32())
        except pa.ArrowInvalid:  # rare: an impossible date such as 2024-02-30
            date_ok = pc.and_(date_ok, _real_calendar(text, "%Y-%m-%d"))
            day = pc.cast(_null_where_not(text, date_ok), pa.date32())
        stamp, stamp_ok = _utc_timestamps(text)
        ok = pc.or_(date_ok, stamp_ok)
        failures.add(column.name, pc.and_(present, pc.invert(ok)), "not a date or accepted timestamp")
        value = pc.if_else(date_ok, day, pc.cast(stamp, pa.date32()))
        value = pc.if_else(ok, value, pa.scalar(None, pa.date32()))
        _add_outside(failures, column.name, value, _date_range())
        return value
    arrow_type = ARROW_TYPES[kind]
    if kind == "double":
        ok = pc.match_substring_regex(text, _NUMBER)
        value = pc.cast(pc.if_else(ok, text, "0"), pa.float64())
        ok = pc.and_(ok, pc.is_finite(value))
        failures.add(column.name, pc.and_(present, pc.invert(ok)), "not a number")
    else:  # integers
        value, ok = _integers(text)
        failures.add(column.name, pc.and_(present, pc.invert(ok)), "not an integer")
    value = pc.if_else(ok, value, pa.scalar(None, value.type))
    if column.min is not None and column.max is not None:
        outside = pc.or_(pc.less(value, column.min), pc.greater(value, column.max))
        failures.add(column.name, outside, f"outside {column.min:g}..{column.max:g}")
    elif column.min is not None:
        failures.add(column.name, pc.less(value, column.min), f"below {column.min:g}")
    if kind != "double":
        # Rows outside the type's range failed above or fail here; only good rows are kept.
        lowest, highest = INTEGER_RANGES[kind]
        outside_type = pc.or_(pc.less(value, lowest), pc.greater(value, highest))
        failures.add(column.name, outside_type, f"outside the {kind} range")
        value = pc.cast(value, arrow_type, safe=False)
    return value


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (kernels such as replace_with_mask take no chunked input)
    that starts at offset 0: pyarrow 18 (MWAA's) if_else misreads the strings of a
    sliced array, such as the first block's, whose header row was sliced off."""
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return array if array.offset == 0 else pa.concat_arrays([array])


def _derive(rule: str, source: pa.Array) -> pa.Array:
    if rule == "milliseconds_to_seconds":
        return pc.divide(pc.cast(source, pa.float64(), safe=False), 1000.0)  # past 2**53: nearest double
    if rule == "utc_date":
        return pc.cast(source, pa.date32())
    if rule == "utc_hour":
        return pc.cast(pc.hour(source), pa.int16())
    raise ValueError(f"unknown derivation rule {rule!r}")


def validate_chunk(
    raw: pa.Table,
    schema: DatasetSchema,
    plan: HeaderPlan,
    *,
    raw_key: str,
    file_id: str,
    source_rows: Sequence[int] | np.ndarray,
    known_reasons: Sequence[str | None] | None = None,
    unparsed: Sequence[tuple[int, str, str]] = (),
) -> ChunkResult:
    """Validate and normalise one batch of a raw file.

    `raw` holds the file's fields by header position (column i = i-th header
    field), all strings; `source_rows` their data-row numbers. `known_reasons`
    are problems found before (bytes that are not UTF-8); `unparsed` rows the
    CSV parser could not split into fields.
    """
    rows = raw.num_rows
    failures = _Failures(rows, known_reasons)
    by_name = {name: _one_array(raw.column(position)) for position, name in plan.columns.items()}
    parsed = {c.name: _parse_column(c, by_name[c.name], failures) for c in schema.columns if c.name in by_name}

    bad = failures.bad_mask()
    keep = pc.invert(bad)
    source_row = pa.array(np.asarray(source_rows, dtype=np.int64))
    arrays: dict[str, pa.Array] = {}
    kept = rows - pc.sum(pc.cast(bad, pa.int64())).as_py() if rows else 0
    for column in schema.columns:
        arrow_type = ARROW_TYPES[column.type]
        if column.name in parsed:
            arrays[column.name] = pc.filter(parsed[column.name], keep).cast(arrow_type)
        else:
            arrays[column.name] = pa.nulls(kept, type=arrow_type)
    for derived in schema.derived:
        arrays[derived.name] = _derive(derived.rule, arrays[derived.source]).cast(ARROW_TYPES[derived.type])
    arrays["file_id"] = pa.repeat(pa.scalar(file_id, pa.string()), kept)
    arrays["source_row"] = pc.filter(source_row, keep)
    good = pa.Table.from_pydict(arrays, schema=schema.staging_arrow_schema)

    bad_positions = np.flatnonzero(bad.to_numpy(zero_copy_only=False)) if rows else np.array([], dtype=np.int64)
    rejected = _rejected_rows(failures, raw, plan, bad_positions, source_row, raw_key, unparsed)
    return ChunkResult(good=good, rejected=rejected, rows_read=rows + len(unparsed))


def _rejected_rows(
    failures: _Failures,
    raw: pa.Table,
    plan: HeaderPlan,
    positions: np.ndarray,
    source_row: pa.Array,
    raw_key: str,
    unparsed: Sequence[tuple[int, str, str]],
) -> pa.Table:
    """QUARANTINE_SCHEMA rows for the rejected positions and the unparsed rows, in
    source_row order. They are few: plain Python over the taken values only."""
    index = pa.array(positions, pa.int64())
    values = [column.to_pylist() for column in raw.take(index).columns]
    codes = failures.first.take(index).to_pylist()
    numbers = source_row.take(index).to_pylist()
    by_name = {name: values[position] for position, name in plan.columns.items()}
    records = raw_records(plan.header, values)
    rows = [
        (numbers[k], _reason(failures, codes[k], by_name, k, int(at)), records[k]) for k, at in enumerate(positions)
    ]
    rows += unparsed
    rows.sort(key=lambda r: r[0])
    return pa.Table.from_pydict(
        {
            "raw_key": [raw_key] * len(rows),
            "source_row": [r[0] for r in rows],
            "reason": [r[1] for r in rows],
            "record": [r[2] for r in rows],
        },
        schema=QUARANTINE_SCHEMA,
    )


def _reason(failures: _Failures, code: int | None, by_name: dict[str, list], k: int, position: int) -> str:
    """The reason of the k-th rejected row (at `position` in the batch)."""
    if failures.known is not None and failures.known[position] is not None:
        return failures.known[position]
    assert code is not None
    column, rule, show_value = failures.rules[code]
    if not show_value:
        return f"{column}: {rule}"
    value = excerpt((by_name[column][k] or "").strip())
    return f"{column}: {rule} (got '{value}')"
