"""The KPI report in a real browser: headless Chromium (Debian's package), no network.

Every chart draws with data, the console stays clean, the page asks for
nothing outside itself, and names from the data show as the text they are.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from include.music_kpis.kpi_report import SECTIONS, render_report
from tests.helpers.browser import chromium_path, open_page
from tests.helpers.report_data import HOSTILE_ARTIST, HOSTILE_GENRE, HOSTILE_MARKUP, HOSTILE_TRACK, report_data

pytestmark = pytest.mark.integration

if chromium_path() is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)", allow_module_level=True)

READY = "document.body && document.body.hasAttribute('data-charts-rendered')"
CHECKS = {
    "rendered": "Number(document.body.getAttribute('data-charts-rendered'))",
    "errors": "Number(document.body.getAttribute('data-report-errors'))",
    # Each chart: Plotly drew an SVG and every trace has points.
    "charts_with_data": """Array.from(document.querySelectorAll('[data-chart]')).filter(function (div) {
        return div.querySelector('.main-svg') && div.data && div.data.length > 0 && div.data.every(function (t) {
            return ['x', 'y', 'z'].some(function (k) { return t[k] && t[k].length > 0; });
        });
    }).map(function (div) { return div.closest('section').id; })""",
    "svg_text": "Array.from(document.querySelectorAll('svg text')).map(function (t) { return t.textContent; })",
    "table_text": "document.getElementById('rejected-files').innerText",
    "pwned": "typeof window.pwned",
    "scripts": "document.scripts.length",
}


def check_report(path: Path) -> tuple[dict, bytes]:
    result = open_page(path, READY, CHECKS)
    assert result.console_errors == []
    assert result.requests == []
    return result.values, result.screenshot


def test_every_chart_draws_with_data_offline(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_report(report_data()), encoding="utf-8")
    values, screenshot = check_report(path)
    assert values["errors"] == 0
    assert values["rendered"] == len(SECTIONS)
    assert values["charts_with_data"] == [element_id for element_id, *_ in SECTIONS]
    assert screenshot.startswith(b"\x89PNG") and len(screenshot) > 50_000
    if os.environ.get("REPORT_SCREENSHOT"):
        Path(os.environ["REPORT_SCREENSHOT"]).write_bytes(screenshot)


def test_names_from_the_data_show_as_text(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_report(report_data()), encoding="utf-8")
    values, _ = check_report(path)
    assert values["pwned"] == "undefined"  # no script or handler from the data ran
    assert values["scripts"] == 2 + len(SECTIONS)  # Plotly, the drawing script, one JSON block a chart
    shown = "\n".join(values["svg_text"])
    for name in (HOSTILE_GENRE, HOSTILE_ARTIST, HOSTILE_TRACK, HOSTILE_MARKUP):
        assert name in shown
    assert "streams/<b>bold</b>.csv" in values["table_text"]


def test_a_year_of_kpis_opens_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_report(report_data(days=365)), encoding="utf-8")
    started = time.monotonic()
    values, _ = check_report(path)
    assert values["rendered"] == len(SECTIONS)
    assert time.monotonic() - started < 60  # browser start included; about 6 s on 2 cores
