"""The KPI report: one self-contained HTML file of charts, from the warehouse's KPI tables.

Every script and style is inline (Plotly's JavaScript included), so the file
opens offline, from a laptop or an S3 link, and makes no network request.
The numbers come from the SQL of ``include/sql/kpi_report/`` (Jinja, rendered
for the backend); the run's summary from ``etl_batch_files`` and the
quarantine Parquet in the processed bucket (quarantine.py).

Text from the data (genres, artists, track names, file keys, reasons) never
becomes markup: it is HTML-escaped where it goes into the page, escaped again
as Plotly labels (Plotly reads tags such as ``<a>`` and ``<b>`` in labels and
shows entities as text), and the chart data sits in JSON script blocks with
``<``, ``>`` and ``&`` written as ``\\u`` escapes.

The DAG's ``publish_report`` task writes it to the processed bucket
(:func:`publish_report`); ``make demo`` and ``make run`` copy that file to
OUT/report.html. What it shows is loaded by report_data.py.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from include.music_kpis.airflow_compat import BaseHook
from include.music_kpis.quarantine import reason_counts
from include.music_kpis.report_data import ReportData, load_report_data, report_keys
from include.music_kpis.settings import AWS_CONN_ID, WAREHOUSE_CONN_ID, RuntimeSettings

OUTCOMES = ("loaded", "skipped", "rejected")
# Reasons shown on the chart; the rest are summed into one bar.
SHOWN_REASONS = 15


def label(value: Any) -> str:
    """Text from the data as a Plotly label: shown as written, never read as markup."""
    return html.escape("" if value is None else str(value), quote=False)


def _layout(fig: go.Figure, title: str, height: int = 420, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0},
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        **kwargs,
    )
    return fig


def genre_figure(data: ReportData) -> go.Figure | None:
    if not data.genre_days:
        return None
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Plays", "Unique listeners"))  # fmt: skip
    by_genre: dict[str, list[tuple]] = {}
    for row in data.genre_days:
        by_genre.setdefault(row[1], []).append(row)
    for genre, rows in by_genre.items():
        dates, name = [str(r[0]) for r in rows], label(genre)
        for row, values in ((1, [r[2] for r in rows]), (2, [r[3] for r in rows])):
            trace = go.Scatter(
                x=dates, y=values, name=name, legendgroup=name, mode="lines+markers", showlegend=row == 1
            )
            fig.add_trace(trace, row, 1)
    return _layout(fig, "Plays and unique listeners per genre", height=620, hovermode="x unified")


def heatmap_figure(data: ReportData) -> go.Figure | None:
    if not data.hours:
        return None
    dates = sorted({str(r[0]) for r in data.hours})
    column = {d: i for i, d in enumerate(dates)}
    plays: list[list[int | None]] = [[None] * len(dates) for _ in range(24)]
    for listen_date, hour, total_plays, *_ in data.hours:
        plays[hour][column[str(listen_date)]] = total_plays
    fig = go.Figure(
        go.Heatmap(
            x=dates,
            y=list(range(24)),
            z=plays,
            colorscale="Viridis",
            colorbar={"title": {"text": "plays"}},
            hovertemplate="%{x} %{y}:00<br>%{z} plays<extra></extra>",
        )
    )
    return _layout(fig, "Listening by hour of day (UTC) and date", yaxis={"title": "hour", "dtick": 3})


def top_artist_figure(data: ReportData) -> go.Figure | None:
    if not data.top_artists:
        return None
    artists = [label(r[1]) for r in data.top_artists]
    fig = go.Figure(
        go.Bar(
            x=[r[0] for r in data.top_artists],
            y=[r[2] for r in data.top_artists],
            text=artists,
            textposition="inside",
            insidetextanchor="start",
            textangle=-90,
            customdata=artists,
            hovertemplate="%{x}:00 %{customdata}: top on %{y} date(s)<extra></extra>",
        )
    )
    return _layout(
        fig,
        "Top artist of each hour of the day (on how many dates it led that hour)",
        xaxis={"title": "hour (UTC)", "dtick": 1},
        yaxis={"title": "dates on top"},
    )


def top_track_figure(data: ReportData) -> go.Figure | None:
    if not data.top_tracks:
        return None
    rows = list(reversed(data.top_tracks))  # first genre on top
    tracks = [label(f"{r[2] or r[1]} — {r[3] or 'unknown artist'}") for r in rows]
    fig = go.Figure(
        go.Bar(
            y=[label(r[0]) for r in rows],
            x=[r[4] for r in rows],
            orientation="h",
            text=tracks,
            textposition="inside",
            insidetextanchor="start",
            customdata=[label(r[1]) for r in rows],
            hovertemplate="%{y}: %{text} (%{customdata}), top on %{x} date(s)<extra></extra>",
        )
    )
    return _layout(
        fig,
        "Top track of each genre (on how many dates it led the genre)",
        height=max(300, 28 * len(rows) + 100),
        xaxis={"title": "dates on top"},
        yaxis={"type": "category"},
    )


def diversity_figure(data: ReportData) -> go.Figure | None:
    if not data.hours:
        return None
    fig = go.Figure(
        go.Scatter(
            x=[f"{r[0]} {r[1]:02d}:00" for r in data.hours],
            y=[r[4] for r in data.hours],
            mode="lines",
            name="hourly",
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    return _layout(
        fig,
        "Track diversity index (unique tracks / plays, each hour)",
        yaxis={"title": "index", "rangemode": "tozero"},
        xaxis={"type": "date"},
    )


def files_figure(data: ReportData) -> go.Figure | None:
    if not data.files:
        return None
    counts = Counter(f.outcome for f in data.files)
    fig = go.Figure(
        go.Bar(
            x=list(OUTCOMES),
            y=[counts[o] for o in OUTCOMES],
            marker_color=["#2ca02c", "#7f7f7f", "#d62728"],
            text=[counts[o] for o in OUTCOMES],
            textposition="outside",
        )
    )
    return _layout(fig, "Raw files of this run", height=320, yaxis={"title": "files"})


def quarantined_by_dataset_figure(data: ReportData) -> go.Figure | None:
    per_dataset: Counter[str] = Counter()
    for f in data.files:
        if f.outcome == "loaded":  # as run_summary.json counts them
            per_dataset[f.dataset] += f.rows_quarantined
    if not sum(per_dataset.values()):
        return None
    datasets = sorted(per_dataset)
    fig = go.Figure(
        go.Bar(x=[label(d) for d in datasets], y=[per_dataset[d] for d in datasets], marker_color="#ff7f0e")
    )
    return _layout(fig, "Quarantined rows by dataset", height=320, yaxis={"title": "rows"})


def quarantined_by_reason_figure(data: ReportData) -> go.Figure | None:
    if not data.reasons:
        return None
    common = data.reasons.most_common()
    shown = common[:SHOWN_REASONS]
    rest = sum(n for _, n in common[SHOWN_REASONS:])
    names = [label(f"{dataset}: {reason}") for (dataset, reason), _ in shown] + (
        [f"{len(common) - SHOWN_REASONS} other reasons"] if rest else []
    )
    values = [n for _, n in shown] + ([rest] if rest else [])
    fig = go.Figure(go.Bar(y=list(reversed(names)), x=list(reversed(values)), orientation="h", marker_color="#ff7f0e"))
    return _layout(
        fig,
        "Quarantined rows by reason",
        height=max(300, 30 * len(names) + 100),
        xaxis={"title": "rows"},
        yaxis={"type": "category", "automargin": True},
    )


_NO_QUARANTINE = "No row was quarantined."
# (element id, heading, figure, what to say when there is nothing to draw)
SECTIONS: list[tuple[str, str, Callable[[ReportData], go.Figure | None], str]] = [
    ("genre-trends", "Genres over time", genre_figure, "No KPI rows yet."),
    ("hour-heatmap", "Hours of the day", heatmap_figure, "No KPI rows yet."),
    ("top-artists", "Top artists", top_artist_figure, "No KPI rows yet."),
    ("top-tracks", "Top tracks", top_track_figure, "No KPI rows yet."),
    ("diversity", "Track diversity", diversity_figure, "No KPI rows yet."),
    ("run-files", "This run: files", files_figure, "This run saw no raw file."),
    ("quarantine-datasets", "This run: quarantined rows", quarantined_by_dataset_figure, "No row was quarantined."),
    (
        "quarantine-reasons",
        "This run: why rows were quarantined",
        quarantined_by_reason_figure,
        "No row was quarantined.",
    ),
]


def _figure_json(fig: go.Figure) -> str:
    text = pio.to_json(fig, validate=False, pretty=False, engine="json")
    # Inside <script type="application/json">: nothing the HTML parser could end or read.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _rejected_table(data: ReportData) -> str:
    rejected = [f for f in data.files if f.outcome == "rejected"]
    if not rejected:
        return "<p>No raw file was rejected.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(f.dataset)}</td><td><code>{html.escape(f.raw_key)}</code></td>"
        f"<td>{html.escape(f.reason or '')}</td></tr>"
        for f in rejected
    )
    return f'<table id="rejected-files"><tr><th>dataset</th><th>file</th><th>reason</th></tr>{rows}</table>'


def _tiles(data: ReportData) -> str:
    dates = sorted({str(r[0]) for r in data.hours})
    span = f"{dates[0]} to {dates[-1]}" if dates else "none"
    outcomes = Counter(f.outcome for f in data.files)
    quarantined = sum(f.rows_quarantined for f in data.files if f.outcome == "loaded")
    tiles = [
        ("dates", f"{len(dates)}", span),
        ("plays", f"{sum(r[2] for r in data.hours):,}", "all dates"),
        ("genres", f"{len({r[1] for r in data.genre_days})}", "all dates"),
        ("files loaded", f"{outcomes['loaded']}", f"{outcomes['skipped']} skipped"),
        ("files rejected", f"{outcomes['rejected']}", "this run"),
        ("rows quarantined", f"{quarantined:,}", "this run"),
    ]
    return "".join(
        f'<div class="tile"><div class="value">{html.escape(v)}</div>'
        f'<div class="name">{html.escape(n)}</div><div class="note">{html.escape(note)}</div></div>'
        for n, v, note in tiles
    )


# The page may load nothing from anywhere: no request leaves it even if something slipped in.
_CONTENT_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)
_STYLE = """
body { font-family: system-ui, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header { background: #1f2937; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #cbd5e1; font-size: 13px; }
main { padding: 16px 28px 40px; max-width: 1400px; margin: 0 auto; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 16px; }
.tile { background: #fff; border-radius: 8px; padding: 10px 16px; min-width: 140px; box-shadow: 0 1px 2px #0002; }
.tile .value { font-size: 22px; font-weight: 600; }
.tile .name { font-size: 13px; color: #555; }
.tile .note { font-size: 11px; color: #888; }
section { background: #fff; border-radius: 8px; padding: 12px 16px; margin: 14px 0; box-shadow: 0 1px 2px #0002; }
section h2 { font-size: 16px; margin: 4px 0 8px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 0 14px; }
.grid section { margin: 14px 0 0; }
@media (max-width: 1000px) { .grid { grid-template-columns: 1fr; } }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
.empty { color: #666; font-style: italic; }
"""

# Draws every chart from its JSON block; body[data-charts-rendered] and body[data-report-errors]
# say how it went (the browser test reads them).
_DRAW = """
(function () {
  var charts = document.querySelectorAll("[data-chart]");
  var errors = [];
  var done = Array.prototype.map.call(charts, function (div) {
    try {
      var spec = JSON.parse(document.getElementById(div.getAttribute("data-chart")).textContent);
      var config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"]};
      return Plotly.newPlot(div, spec.data, spec.layout, config).catch(function (e) { errors.push(String(e)); });
    } catch (e) { errors.push(String(e)); return Promise.resolve(); }
  });
  Promise.all(done).then(function () {
    document.body.setAttribute("data-report-errors", String(errors.length));
    document.body.setAttribute("data-charts-rendered", String(charts.length - errors.length));
    errors.forEach(function (e) { console.error(e); });
  });
})();
"""


def _section(element_id: str, heading: str, fig: go.Figure | None, empty: str) -> str:
    if fig is None:
        body = f'<p class="empty">{html.escape(empty)}</p>'
        return f'<section id="{element_id}"><h2>{html.escape(heading)}</h2>{body}</section>'
    return (
        f'<section id="{element_id}"><h2>{html.escape(heading)}</h2>'
        f'<div class="chart" data-chart="{element_id}-data"></div>'
        f'<script type="application/json" id="{element_id}-data">{_figure_json(fig)}</script></section>'
    )


def render_report(data: ReportData) -> str:
    """The report as one HTML document, every script and style inline."""
    sections = {element_id: _section(element_id, h, build(data), empty) for element_id, h, build, empty in SECTIONS}
    run_summary = (
        '<div class="grid">'
        + sections.pop("run-files")
        + sections.pop("quarantine-datasets")
        + "</div>"
        + sections.pop("quarantine-reasons")
        + f'<section id="rejected"><h2>This run: rejected files</h2>{_rejected_table(data)}</section>'
    )
    title = "Music streaming KPIs"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CONTENT_POLICY}">
<title>{title}</title>
<style>{_STYLE}</style>
<script>{get_plotlyjs()}</script>
</head>
<body>
<header><h1>{title}</h1>
<p>DAG run <code>{html.escape(data.run_id)}</code> · generated {html.escape(data.generated_at)}</p></header>
<main>
<div class="tiles">{_tiles(data)}</div>
{"".join(sections.values())}
<h2>The run</h2>
{run_summary}
</main>
<script>{_DRAW}</script>
</body>
</html>
"""


def publish_report(run_id: str, backend: str) -> list[str]:
    """Production: the report of this run to the processed bucket, per run and as the latest."""
    bucket = RuntimeSettings.from_variables().processed_bucket
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
    warehouse = BaseHook.get_hook(WAREHOUSE_CONN_ID)
    data = load_report_data(warehouse.get_records, backend, run_id, lambda files: reason_counts(s3, bucket, files))
    body = render_report(data).encode("utf-8")
    keys = list(report_keys(run_id))
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/html; charset=utf-8")
    return [f"s3://{bucket}/{key}" for key in keys]
