"""Cells a spreadsheet would run as a formula, made inert: the one rule for every CSV people open.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (``=HYPERLINK(...)`` links, ``=cmd|...``
runs a program on old Excel), and a leading tab or carriage return can hide
such a cell's first character. Text from the data (genres, artists, track
ids, quarantined records) can start with any of them, so such a value is
written with a leading apostrophe, which spreadsheets show as plain text
(OWASP "CSV Injection"). Numbers and dates are never text columns here, so a
negative number is never touched.

The same rule has two renderings: :func:`safe_cell` for CSVs written in
Python (``make demo``'s OUT, the PostgreSQL export path, the quarantine CSVs)
and :func:`safe_cell_sql` for the CSVs the warehouse writes itself (Redshift
UNLOAD), both from :data:`FORMULA_LEADS`.
"""

from __future__ import annotations

from typing import Any

# A text cell starting with one of these is a formula, or can hide one.
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"


def safe_cell(value: Any) -> Any:
    """The value, with an apostrophe in front when it is text a spreadsheet would run."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return NEUTRALISER + value
    return value


def safe_cell_sql(column: str) -> str:
    """SQL expression of safe_cell(column), the same on Redshift and PostgreSQL.

    CHR() spells every character, so the expression has no quote to escape
    inside UNLOAD's quoted query (RedshiftToS3Operator un-doubles quotes).
    """
    leads = ", ".join(f"CHR({ord(lead)})" for lead in FORMULA_LEADS)
    return (
        f"CASE WHEN SUBSTRING({column}, 1, 1) IN ({leads}) "
        f"THEN CHR({ord(NEUTRALISER)}) || {column} ELSE {column} END AS {column}"
    )
