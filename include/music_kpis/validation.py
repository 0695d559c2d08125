"""Row and header rules of SPEC sections 2 and 3, on chunks of raw CSV text.

Every raw value arrives as a string. A chunk is split into typed, normalised
good rows (in the staging column order) and rejected rows, each with one reason
naming the first broken rule: ``"<column>: <rule> (got '<value>')"``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.music_kpis.csv_reader import raw_record
from include.music_kpis.schemas import ARROW_TYPES, Column, DatasetSchema

log = logging.getLogger(__name__)

# `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC) or ISO 8601 with `T`, optionally with
# `Z` or a `+HH:MM` / `-HH:MM` offset. Fractions beyond microseconds are cut.
TIMESTAMP_PATTERN = (
    r"\d{4}-\d{2}-\d{2}"
    r"(?: \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?"
    r"|T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?)"
)
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
INTEGER_PATTERN = r"[+-]?\d{1,18}"
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}

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


def _shown(values: pd.Series) -> pd.Series:
    return values.str.slice(0, 80)


def _parse_timestamps(text: pd.Series) -> pd.Series:
    """UTC-naive microsecond timestamps; NaT where the text is not an accepted form."""
    well_formed = text.str.fullmatch(TIMESTAMP_PATTERN).fillna(False).astype(bool)
    parsed = pd.to_datetime(text.where(well_formed), format="ISO8601", utc=True, errors="coerce")
    return parsed.dt.tz_localize(None).dt.floor("us").astype("datetime64[us]")


class _ColumnCheck:
    """Parses one column; records the first broken rule per row."""

    def __init__(self, reasons: pd.Series) -> None:
        self.reasons = reasons

    def fail(self, column: str, mask: pd.Series, rule: str, raw: pd.Series | None = None) -> None:
        mask = mask & self.reasons.isna()
        if not mask.any():
            return
        if raw is None:
            self.reasons[mask] = f"{column}: {rule}"
        else:
            self.reasons[mask] = f"{column}: {rule} (got '" + _shown(raw[mask]) + "')"


def _parse_column(column: Column, raw: pd.Series, check: _ColumnCheck) -> pd.Series:
    text = raw.fillna("").astype("str").str.strip()
    empty = text == ""
    if not column.accepts_null:
        check.fail(column.name, empty, "missing required value")
    present = ~empty
    kind = column.type
    if kind == "text":
        value = text.str.lower() if column.lower else text
        if column.max_bytes is not None:
            # Redshift VARCHAR lengths count bytes; only long strings need encoding.
            long = value.str.len() > column.max_bytes // 4
            if long.any():
                nbytes = value[long].str.encode("utf-8").str.len()
                too_long = pd.Series(False, index=value.index)
                too_long[long] = nbytes > column.max_bytes
                check.fail(column.name, too_long, f"longer than {column.max_bytes} bytes")
        return value.where(present, None)
    if kind in ("bigint", "integer", "smallint"):
        ok = text.str.fullmatch(INTEGER_PATTERN).fillna(False).astype(bool)
        check.fail(column.name, present & ~ok, "not an integer", text)
        value = pd.to_numeric(text.where(present & ok), errors="coerce").astype("Int64")
    elif kind == "double":
        value = pd.to_numeric(text.where(present), errors="coerce").astype("Float64")
        finite = pd.Series(np.isfinite(value.to_numpy(dtype="float64", na_value=np.nan)), index=text.index)
        check.fail(column.name, present & ~finite, "not a number", text)
    elif kind == "boolean":
        value = text.str.lower().map(BOOLEANS).astype("boolean")
        check.fail(column.name, present & value.isna(), "not a boolean (true/false/1/0)", text)
        return value
    elif kind == "timestamp":
        value = _parse_timestamps(text)
        check.fail(column.name, present & value.isna(), "not an accepted timestamp", text)
        return value
    elif kind == "date":
        is_date = text.str.fullmatch(DATE_PATTERN).fillna(False).astype(bool)
        dates = pd.to_datetime(text.where(is_date), format="%Y-%m-%d", errors="coerce")
        stamps = _parse_timestamps(text.where(~is_date, ""))
        value = dates.fillna(stamps).dt.floor("D")
        check.fail(column.name, present & value.isna(), "not a date or accepted timestamp", text)
        return value
    else:  # pragma: no cover - schemas.py rejects unknown types
        raise ValueError(kind)
    if column.min is not None and column.max is not None:
        bad = (value < column.min) | (value > column.max)
        check.fail(column.name, bad.fillna(False), f"outside {column.min:g}..{column.max:g}", text)
    elif column.min is not None:
        check.fail(column.name, (value < column.min).fillna(False), f"below {column.min:g}", text)
    return value


def _derive(rule: str, source: pa.Array) -> pa.Array:
    if rule == "milliseconds_to_seconds":
        return pc.divide(pc.cast(source, pa.float64()), 1000.0)
    if rule == "utc_date":
        return pc.cast(source, pa.date32())
    if rule == "utc_hour":
        return pc.cast(pc.hour(source), pa.int16())
    raise ValueError(f"unknown derivation rule {rule!r}")


def validate_chunk(
    raw: pd.DataFrame,
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

    `raw` holds the file's fields by header position, all strings; `source_rows`
    their data-row numbers. `known_reasons` are problems found before (bytes that
    are not UTF-8); `unparsed` rows the CSV parser could not split into fields.
    """
    frame = raw[list(plan.columns)].rename(columns=plan.columns)
    rows = len(frame)
    source_row = pd.Index(np.asarray(source_rows, dtype=np.int64))
    frame.index = source_row
    reasons = pd.Series(known_reasons if known_reasons is not None else None, index=source_row, dtype="object")
    check = _ColumnCheck(reasons)

    parsed: dict[str, pd.Series] = {}
    for column in schema.columns:
        if column.name in frame.columns:
            parsed[column.name] = _parse_column(column, frame[column.name], check)

    bad = reasons.notna()
    keep = ~bad.to_numpy()
    good_index = source_row[keep]
    arrays: dict[str, pa.Array] = {}
    for column in schema.columns:
        arrow_type = ARROW_TYPES[column.type]
        if column.name in parsed:
            values = parsed[column.name][keep]
            arrays[column.name] = pa.array(values, type=arrow_type, from_pandas=True)
        else:
            arrays[column.name] = pa.nulls(len(good_index), type=arrow_type)
    for derived in schema.derived:
        arrays[derived.name] = _derive(derived.rule, arrays[derived.source]).cast(ARROW_TYPES[derived.type])
    arrays["file_id"] = pa.array([file_id] * len(good_index), type=pa.string())
    arrays["source_row"] = pa.array(good_index.to_numpy(), type=pa.int64())
    good = pa.Table.from_pydict(arrays, schema=schema.staging_arrow_schema)

    bad_positions = np.flatnonzero(bad.to_numpy())
    values = raw.to_numpy(dtype=object)
    rejected = pa.Table.from_pydict(
        {
            "raw_key": [raw_key] * (len(bad_positions) + len(unparsed)),
            "source_row": [*source_row[bad_positions].tolist(), *(u[0] for u in unparsed)],
            "reason": [*reasons.iloc[bad_positions].astype(str).tolist(), *(u[1] for u in unparsed)],
            "record": [
                *(raw_record(plan.header, [str(v) for v in values[i]]) for i in bad_positions),
                *(u[2] for u in unparsed),
            ],
        },
        schema=QUARANTINE_SCHEMA,
    )
    rows += len(unparsed)
    return ChunkResult(good=good, rejected=rejected, rows_read=rows)
