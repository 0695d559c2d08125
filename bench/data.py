"""Deterministic benchmark data: stream CSV files of any size, with bad rows."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

FORMS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ")


def write_streams(path: Path, rows: int, *, bad_share: float = 0.01, seed: int = 11, chunk: int = 500_000) -> None:
    """rows stream rows (user_id, track_id, listen_time); bad_share of them break one rule."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = np.datetime64("2024-03-01T00:00:00")
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("user_id,track_id,listen_time\n")
        for offset in range(0, rows, chunk):
            n = min(chunk, rows - offset)
            users = rng.integers(1, 1_000_000, n).astype(str)
            tracks = np.char.add("trk", rng.integers(0, 90_000, n).astype(str))
            seconds = rng.integers(0, 30 * 86_400, n)
            stamps = np.datetime_as_string(start + seconds.astype("timedelta64[s]"), unit="s")
            iso = rng.random(n) < 0.5
            stamps = np.where(iso, np.char.add(stamps, "Z"), np.char.replace(stamps, "T", " "))
            bad = rng.random(n) < bad_share
            kind = rng.integers(0, 3, n)
            users = np.where(bad & (kind == 0), "x" + users, users)
            tracks = np.where(bad & (kind == 1), "", tracks)
            stamps = np.where(bad & (kind == 2), "not-a-time", stamps)
            lines = np.char.add(np.char.add(np.char.add(np.char.add(users, ","), tracks), ","), stamps)
            out.write("\n".join(lines.tolist()))
            out.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data/streams_5m.csv"))
    args = parser.parse_args()
    write_streams(args.out, args.rows)


if __name__ == "__main__":
    main()
