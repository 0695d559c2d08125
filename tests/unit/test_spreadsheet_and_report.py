"""Text from the data stays text: in the KPI CSVs (spreadsheet formulas) and in the report (markup)."""

from __future__ import annotations

import csv
import io
import time

import pytest

from include.music_kpis.exports import write_kpi_csv
from include.music_kpis.kpi_report import SECTIONS, render_report
from include.music_kpis.spreadsheet import FORMULA_LEADS, safe_cell
from tests.helpers.report_data import HOSTILE_ARTIST, HOSTILE_GENRE, HOSTILE_KEY, report_data


@pytest.mark.parametrize("lead", FORMULA_LEADS)
def test_a_formula_leading_cell_becomes_text(lead: str) -> None:
    assert safe_cell(f"{lead}HYPERLINK(1)") == f"'{lead}HYPERLINK(1)"


def test_other_values_are_left_alone() -> None:
    assert [safe_cell(v) for v in ("pop", "a=b", "", None, -3, 2.5)] == ["pop", "a=b", "", None, -3, 2.5]


def test_kpi_csv_keeps_columns_and_writes_doubles_to_six_places() -> None:
    out = io.StringIO()
    write_kpi_csv(out, ["listen_date", "x", "y"], [("2025-01-01", 1 / 3, None)])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["listen_date", "x", "y"], ["2025-01-01", "0.333333", ""]]


def test_report_has_no_markup_from_the_data() -> None:
    page = render_report(report_data())
    for text in (HOSTILE_GENRE, HOSTILE_ARTIST, HOSTILE_KEY, "<img src=x", "<i>x</i>"):
        assert text not in page
    assert "streams/&lt;b&gt;bold&lt;/b&gt;.csv" in page  # the rejected file's key, as text
    assert page.count("<script") == 2 + sum(1 for _ in SECTIONS)  # Plotly, the drawing script, one JSON each


def test_report_is_self_contained() -> None:
    page = render_report(report_data())
    for reference in ("<script src", "<link", "<iframe", "<img", "@import", "url(http"):
        assert reference not in page  # the browser test also watches for any request


def test_a_year_of_kpis_renders_in_seconds_into_a_mailable_file() -> None:
    """365 dates x 24 hours x 9 genres (docs/report.md states the measured size)."""
    started = time.monotonic()
    page = render_report(report_data(days=365))
    assert time.monotonic() - started < 15
    assert len(page.encode("utf-8")) < 10 * 1024 * 1024
