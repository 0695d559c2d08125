"""ReportData without a warehouse: any number of dates, with names that try to be markup or formulas."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

from include.music_kpis.quarantine import BatchFile
from include.music_kpis.report_data import ReportData

# Names from the data that must show as text: markup, script, a formula, an entity.
HOSTILE_GENRE = "<script>window.pwned=1</script>"
HOSTILE_ARTIST = '=HYPERLINK("http://example.invalid","x")'
HOSTILE_TRACK = '<img src=x onerror="window.pwned=2">'
HOSTILE_KEY = "streams/<b>bold</b>.csv"
# Tags Plotly itself reads in labels (it would show "bold" in bold and break the line).
HOSTILE_MARKUP = "<b>bold</b><br>beat"
GENRES = ["pop", "rock", "jazz", "indie", "hip-hop", "classical", "latin", HOSTILE_MARKUP, HOSTILE_GENRE]
ARTISTS = ["Óscar Río", "Dune Riders", "The Glass", HOSTILE_ARTIST, "Nova & Co"]


def report_data(days: int = 14, seed: int = 7, first: date = date(2025, 1, 1)) -> ReportData:
    rng = random.Random(seed)
    dates = [first + timedelta(days=i) for i in range(days)]
    genre_days = [
        (d, g, rng.randint(50, 900), rng.randint(10, 300)) for d in dates for g in sorted(GENRES, key=str.encode)
    ]
    hours = []
    for d in dates:
        for hour in range(24):
            plays = int(200 + 150 * (1 + (hour - 3) % 24 / 12) * rng.random())
            hours.append((d, hour, plays, rng.randint(5, plays), round(rng.uniform(0.3, 0.95), 6)))
    top_artists = [(hour, ARTISTS[hour % len(ARTISTS)], rng.randint(1, days)) for hour in range(24)]
    top_tracks = [
        (g, f"track{i:03d}", HOSTILE_TRACK if i == 0 else f"Song {i}", ARTISTS[i % len(ARTISTS)], rng.randint(1, days))
        for i, g in enumerate(sorted(GENRES, key=str.encode))
    ]
    files = [
        BatchFile("users", "metadata/users/users.csv", "f" * 32, "loaded", None, 3),
        BatchFile("songs", "metadata/songs/songs.csv", "e" * 32, "skipped", None, 0),
        BatchFile("streams", "streams/day1.csv", "d" * 32, "loaded", None, 12),
        BatchFile("streams", HOSTILE_KEY, "c" * 32, "rejected", "empty file: no header row <i>x</i>", 0),
    ]
    reasons = Counter(
        {
            ("streams", "user_id: not an integer"): 7,
            ("streams", "listen_time: outside 0001-01-01..9999-12-31 in UTC"): 5,
            ("users", f"user_name: {HOSTILE_ARTIST}"): 3,
        }
    )
    return ReportData("manual__2025-01-15T00:00:00+00:00", "2025-01-15 00:00 UTC", genre_days, hours,
                      top_artists, top_tracks, files, reasons)  # fmt: skip
