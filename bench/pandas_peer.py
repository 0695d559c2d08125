"""The usual way such a step is written: pandas over the whole file, same rules.

Used only as a peer in the benchmark; the project's implementation is
include/music_kpis/transform.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?"
    r"|T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?)"
)


def transform_streams(csv_path: Path, out_dir: Path) -> tuple[int, int]:
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    frame.columns = [c.strip().lower() for c in frame.columns]
    user = frame["user_id"].str.strip()
    track = frame["track_id"].str.strip()
    text = frame["listen_time"].str.strip()
    user_ok = user.str.fullmatch(r"[+-]?\d{1,18}")
    user_id = pd.to_numeric(user.where(user_ok), errors="coerce")
    time_ok = text.str.fullmatch(TIMESTAMP)
    listen_time = pd.to_datetime(text.where(time_ok), format="ISO8601", utc=True, errors="coerce")
    good = user_ok & (user_id >= 1) & (track != "") & listen_time.notna()
    out = pd.DataFrame(
        {
            "user_id": user_id[good].astype("int64"),
            "track_id": track[good],
            "listen_time": listen_time[good].dt.tz_localize(None),
        }
    )
    out["listen_date"] = out["listen_time"].dt.date
    out["listen_hour"] = out["listen_time"].dt.hour.astype("int16")
    out_dir.mkdir(parents=True, exist_ok=True)
    out.to_parquet(out_dir / "transformed.parquet")
    frame[~good].assign(reason="rule broken").to_parquet(out_dir / "quarantine.parquet")
    return len(frame), int((~good).sum())
