"""The byte-level checks settle only what the general kernel would decide the same
way (include/music_kpis/string_bytes.py): the regex and the trim are the rules."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.music_kpis.string_bytes import has_no_edge_whitespace, match_fixed_forms
from include.music_kpis.validation import _PLAIN_UTC_TIMESTAMPS, _UTC_TIMESTAMP, _matches

# Bytes a timestamp is made of, and some it must not be: other separators, a
# digit-like byte just past '9' (':' is 0x3A), one below '0' ('/'), non-ASCII, NUL.
_NEAR = "0123456789-: TZ.+/;xé٣\x00\t"


@st.composite
def near_timestamps(draw: st.DrawFn) -> str:
    """A plain timestamp with up to three characters changed, dropped or added."""
    text = list(draw(st.sampled_from(["2024-05-01 10:15:30", "2024-05-01T10:15:30", "2024-05-01T10:15:30Z"])))
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["replace", "drop", "insert"]))
        if action == "replace":
            text[position] = draw(st.sampled_from(_NEAR))
        elif action == "drop" and len(text) > 1:
            del text[position]
        else:
            text.insert(position, draw(st.sampled_from(_NEAR)))
    return "".join(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(near_timestamps(), min_size=1, max_size=40), st.integers(0, 3))
def test_plain_timestamp_forms_agree_with_the_regex(values: list[str], offset: int) -> None:
    # A sliced array (a batch after the header row) reads from its offset on.
    text = pa.array(["x" * 30] * offset + values, pa.string()).slice(offset)
    expected = pc.match_substring_regex(text, _UTC_TIMESTAMP).to_pylist()
    assert _matches(text, _UTC_TIMESTAMP, _PLAIN_UTC_TIMESTAMPS).to_pylist() == expected


def test_plain_forms_settle_only_rows_of_their_lengths() -> None:
    text = pa.array(["2024-05-01 10:15:30", "2024-05-01T10:15:30Z", "2024-05-01T10:15:30.5", "2024-05-01 10:15:3x"])
    matched, settled = match_fixed_forms(text, _PLAIN_UTC_TIMESTAMPS)
    assert settled.tolist() == [True, True, False, True]
    assert matched.tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    "values",
    [
        ["", "", ""],  # too short to hold a word: the regex decides
        ["2024-05-01 10:15:30", None],  # nulls: the regex decides
    ],
)
def test_arrays_the_bytes_cannot_settle_are_left_to_the_regex(values: list[str | None]) -> None:
    assert match_fixed_forms(pa.array(values, pa.string()), _PLAIN_UTC_TIMESTAMPS) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=st.sampled_from("ab1 \t\n\x1f\x7f\u00a0\u2003\u3000é"), max_size=4), max_size=12),
    st.integers(0, 2),
)
def test_no_edge_whitespace_only_when_trimming_changes_nothing(values: list[str], offset: int) -> None:
    text = pa.array(["pad"] * offset + values, pa.string()).slice(offset)
    if has_no_edge_whitespace(text):
        assert pc.utf8_trim_whitespace(text).to_pylist() == values


def test_values_with_printable_edges_need_no_trim() -> None:
    assert has_no_edge_whitespace(pa.array(["trk1", "", "a b", "x"] * 3))
    assert not has_no_edge_whitespace(pa.array(["trk1 ", "abcdefghij"]))
    assert not has_no_edge_whitespace(pa.array(["\u00a0trk1", "abcdefghij"]))
