"""How a reason quotes what it read: a short, printable, escaped excerpt.

Reasons travel into task logs, the quarantine files and the warehouse ledger
(a VARCHAR that can hold neither NUL nor invalid UTF-8). So a reason never
carries raw bytes or a whole row: at most EXCERPT_CHARS characters of it, with
every character that is not printable written as an escape (\\x00, \\u200b).
"""

from __future__ import annotations

import re

EXCERPT_CHARS = 40
# A reason must fit the ledger's reason column (VARCHAR(4096) counts bytes), escapes included.
MAX_REASON_CHARS = 1000
MAX_REASON_BYTES = 2000


def excerpt(value: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of value, non-printable ones escaped, '...' when cut."""
    text = value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else value
    if len(text) <= limit and text.isprintable():  # most values: nothing to cut or escape
        return text
    cut = len(text) > limit
    escaped = "".join(ch if ch.isprintable() else _escape(ch) for ch in text[:limit])
    return escaped + ("..." if cut else "")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def safe_reason(reason: str) -> str:
    """A reason fit for logs and the ledger: printable, at most MAX_REASON_BYTES of UTF-8 (+ '...')."""
    text = excerpt(reason, MAX_REASON_CHARS)
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_REASON_BYTES:
        return text
    return encoded[:MAX_REASON_BYTES].decode("utf-8", errors="ignore") + "..."


# pyarrow quotes the offending row: "CSV parse error: Row #5: Expected 1 columns, got 3: <row>".
_ARROW_ROW_ERROR = re.compile(r"Row #(\d+): Expected (\d+) columns, got (\d+)")


def describe_read_error(error: BaseException) -> str:
    """Why a file could not be read, without the raw content the error may quote."""
    message = str(error)
    ragged = _ARROW_ROW_ERROR.search(message)
    if ragged:
        row, expected, actual = (int(g) for g in ragged.groups())
        # Arrow counts records from the header (1); data rows count from 1 after it.
        return (
            f"row {row - 1}: row has {actual} field(s), the header has {expected}, "
            "and is not UTF-8 text: the file is not a CSV in UTF-8"
        )
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return f"{type(error).__name__}: {excerpt(first_line, 120)}" if first_line else type(error).__name__
