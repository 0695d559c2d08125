"""Checks on the bytes of an Arrow string array, for a rule's most common case.

A kernel that looks at each value (a regex, a trim) costs 10-100 ns a row. Most
values of a real file are in one plain form, which a few numpy operations over
the array's own buffers settle for all rows at once. Each check here settles
only what it can prove; the caller gives the rest to the general kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa

_WORD = 8  # bytes compared at once, as one little-endian uint64
_FIRST_PRINTABLE, _LAST_PRINTABLE = 0x21, 0x7E  # ASCII without space and control characters


@dataclass(frozen=True)
class _Values:
    """Where each value of a string array lies in its data buffer."""

    buffer: pa.Buffer
    offsets: np.ndarray  # int32, a view of the array's own

    @property
    def starts(self) -> np.ndarray:
        return self.offsets[:-1]

    @property
    def ends(self) -> np.ndarray:
        return self.offsets[1:]


def _values(text: pa.Array) -> _Values | None:
    """None for an array these checks do not read (not plain utf8, nulls, no data)."""
    if text.type != pa.string() or text.null_count or len(text) == 0:
        return None
    _, offsets_buffer, buffer = text.buffers()
    if buffer is None or buffer.size < _WORD:
        return None
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    return _Values(buffer, offsets)


def has_no_edge_whitespace(text: pa.Array) -> bool:
    """True when no value can start or end with whitespace, so trimming would change
    nothing: each value's first and last byte is printable ASCII. (Any Unicode
    whitespace is encoded in bytes of 0x80 and above.) False when unsure."""
    values = _values(text)
    if values is None:
        return False
    data = np.frombuffer(values.buffer, dtype=np.uint8)
    # An empty value has nothing to trim: the bytes read for it are its neighbours' (the
    # last byte of the buffer, at index -1, for empty values first), which can only
    # make this say False.
    starts = values.starts
    if starts[-1] >= len(data):  # empty values at the end
        starts = np.minimum(starts, len(data) - 1)
    return bool(_printable(data[starts]).all() and _printable(data[values.ends - 1]).all())


def _printable(byte: np.ndarray) -> np.ndarray:
    # One comparison: bytes below the range wrap around to above it.
    return (byte - np.uint8(_FIRST_PRINTABLE)) <= np.uint8(_LAST_PRINTABLE - _FIRST_PRINTABLE)


@dataclass(frozen=True)  # hashable: fits() is cached per pattern
class _WordPattern:
    """8 bytes of a form: `mask` keeps the bits that matter, `want` is what they must be,
    `carry` adds 6 to each digit so that one above 9 leaves the 0x30-0x3F range."""

    mask: np.uint64
    want: np.uint64
    carry: np.uint64

    @classmethod
    def of(cls, form: bytes) -> _WordPattern:
        mask = want = carry = 0
        for position, byte in enumerate(form):
            shift = 8 * position
            if byte == ord("D"):  # an ASCII digit, 0x30-0x39
                mask, want, carry = mask | 0xF0 << shift, want | 0x30 << shift, carry | 0x06 << shift
            else:  # this very byte
                mask, want = mask | 0xFF << shift, want | byte << shift
        return cls(np.uint64(mask), np.uint64(want), np.uint64(carry))

    def fits(self, words: np.ndarray) -> np.ndarray:
        # The second test adds across bytes only when a digit byte failed the first.
        return ((words & self.mask) == self.want) & (((words + self.carry) & self.mask) == self.want)


@cache
def _word_patterns(form: bytes) -> tuple[list[_WordPattern], _WordPattern]:
    """The form's patterns for the words every 8 bytes from its start, and for the
    word that ends with it (it may overlap the one before)."""
    inner = [_WordPattern.of(form[start : start + _WORD]) for start in range(0, len(form) - _WORD, _WORD)]
    return inner, _WordPattern.of(form[-_WORD:])


def match_fixed_forms(text: pa.Array, forms: tuple[bytes, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(matched, settled) per row for fixed-length forms written with `D` for an ASCII
    digit and any other byte for itself, each at least 8 bytes long.

    A row is settled when its byte length is that of one of the forms; it is
    matched when it is one of the forms of its length. Rows not settled are for
    the caller to check. None when the array is not one these checks read.
    """
    values = _values(text)
    if values is None or any(len(form) < _WORD for form in forms):
        return None
    # Every byte of the buffer but the last 7 starts a word.
    words = np.ndarray(shape=(values.buffer.size - _WORD + 1,), dtype="<u8", buffer=values.buffer, strides=(1,))
    highest = len(words) - 1
    rows = len(values.starts)
    lengths = np.diff(values.offsets)
    matched, settled = np.zeros(rows, dtype=bool), np.zeros(rows, dtype=bool)

    # Each row's word at a distance from its start, or its last word ("end"); a row of
    # another length may have none there: its position is clipped, the row not compared.
    @cache
    def word(at: int | str) -> np.ndarray:
        if at == "end":
            return words[np.clip(values.ends - _WORD, 0, highest)]
        return words[np.minimum(values.starts + at, highest)]

    @cache
    def fits(pattern: _WordPattern, at: int | str) -> np.ndarray:  # forms share words
        return pattern.fits(word(at))

    for length in sorted({len(form) for form in forms}):
        this_length = lengths == length
        if not this_length.any():
            continue
        settled |= this_length
        for form in (f for f in forms if len(f) == length):
            inner, last = _word_patterns(form)
            form_fits = this_length & fits(last, "end")
            for position, pattern in enumerate(inner):
                form_fits &= fits(pattern, position * _WORD)
            matched |= form_fits
    return matched, settled
