"""Deterministic sample data shaped like the raw bucket (contract section 1).

Writes::

    <out>/metadata/users/users.csv
    <out>/metadata/songs/songs.csv       (public Spotify tracks data set column order)
    <out>/streams/streams1.csv .. streamsN.csv

Only the standard library and ``random.Random(seed)`` are used, so the same
arguments always give byte-identical files.

Clean data (the default) passes every rule of contract section 2 but still
exercises the normalisation and loading rules: genres with mixed case and
surrounding spaces, artists shared by several songs (with names whose byte
order differs from a case-insensitive order, and one with a comma), a song
listed twice (the last row wins), all accepted timestamp forms including
offsets that cross midnight, and repeated plays within and across files
(sometimes written in another timestamp form).

``messy=True`` adds a few rows that break the rules (used by tests): a user
aged 7, a user with a non-integer id, a stream with a bad timestamp, a stream
of an unknown track (parked, not rejected) and an extra unknown column in the
stream files. Each file stays under the 5 % rejection threshold with the
default sizes.

Run from the project root::

    python -m localdev.sample_data --out data/sample
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

USERS_HEADER = ["user_id", "user_name", "user_age", "user_country", "created_at"]
AUDIO_FEATURES = [
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
]
SONGS_HEADER = [
    "",
    "track_id",
    "artists",
    "album_name",
    "track_name",
    "popularity",
    "duration_ms",
    "explicit",
    *AUDIO_FEATURES,
    "track_genre",
]
STREAMS_HEADER = ["user_id", "track_id", "listen_time"]

# Raw genre spellings; they normalise (trim + lower-case) to six genres.
GENRE_SPELLINGS: dict[str, list[str]] = {
    "pop": ["pop", " Pop", "POP", "Pop "],
    "rock": ["rock", "ROCK", " Rock ", "Rock"],
    "hip-hop": ["hip-hop", "Hip-Hop", " HIP-HOP"],
    "jazz": ["jazz", "Jazz ", "JAZZ"],
    "classical": ["classical", "Classical", " classical "],
    "indie": ["indie", " Indie", "INDIE"],
}

# Byte order and a case-insensitive collation disagree on several of these
# ("Zoë Lark" < "alt-Q" in bytes), so top_artist ties check the tie-break.
ARTISTS = [
    "alt-Q",
    "Zoë Lark",
    "Björn Ek",
    "the Kites",
    "Earth, Sun & Sky",
    "MØRK",
    "deadlock5",
    "Élan Vital",
    "Óscar Río",
    "Ana Lúcia",
    "Nova Grey",
    "Paper Moons",
    "Quiet Harbor",
    "Red Lanterns",
    "Silver Pines",
    "Tide & Thunder",
    "Umbra",
    "Velvet Echo",
    "Wild Orchard",
    "Yara Sol",
    "Cedar Lane",
    "Dune Riders",
    "Fable",
    "Glass Atlas",
    "Hollow Crown",
    "Iris Vale",
    "June Harlow",
    "Kilo Tango",
]
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Emi", "Finn", "Gus", "Hana", "Ivo", "José", "Kai", "Lea", "Mo", "Noor"]
LAST_NAMES = ["Silva", "Müller", "Smith", "Okafor", "Tanaka", "Nowak", "García", "Rossi", "Kim", "Dubois", "Khan"]
COUNTRIES = ["US", "BR", "DE", "JP", "NG", "PL", "ES", "IT", "KR", "FR", "IN", "GB", "MX", "SE"]
WORDS = ["Blue", "Night", "Summer", "Echo", "Gold", "River", "Dream", "Fire", "Glass", "Road", "Heart", "Stone", "Sky"]
EXPLICIT_SPELLINGS = ["True", "False", "true", "false", "FALSE", "0", "1"]

# Plays happen between these instants (UTC): five days of 2024.
STREAMS_START = dt.datetime(2024, 3, 1)
STREAMS_SECONDS = 5 * 24 * 3600
ID_ALPHABET = string.ascii_letters + string.digits

# (name, weight) of the timestamp forms written for listen_time.
TIME_FORMS: list[tuple[str, int]] = [
    ("space", 35),
    ("space_fraction", 15),
    ("zulu", 20),
    ("plus_0200", 10),
    ("minus_0530", 10),
    ("t_naive", 10),
]
OFFSETS = {"plus_0200": dt.timedelta(hours=2), "minus_0530": -dt.timedelta(hours=5, minutes=30)}


def render_time(instant: dt.datetime, form: str) -> str:
    """``instant`` (naive UTC) written in one of the accepted forms."""
    if form == "space":
        return instant.strftime("%Y-%m-%d %H:%M:%S")
    if form == "space_fraction":
        return instant.strftime("%Y-%m-%d %H:%M:%S.%f")
    if form == "zulu":
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == "t_naive":
        return instant.strftime("%Y-%m-%dT%H:%M:%S")
    offset = OFFSETS[form]
    return (instant + offset).replace(tzinfo=dt.timezone(offset)).isoformat(timespec="seconds")


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _track_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        candidate = "".join(rng.choice(ID_ALPHABET) for _ in range(22))
        if candidate not in taken:
            taken.add(candidate)
            return candidate


def _users(rng: random.Random, count: int, messy: bool) -> list[list[object]]:
    rows: list[list[object]] = []
    for user_id in range(1, count + 1):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        created = dt.datetime(2018, 1, 1) + dt.timedelta(seconds=rng.randrange(6 * 365 * 24 * 3600))
        created_at = created.strftime("%Y-%m-%d" if rng.random() < 0.5 else "%Y-%m-%d %H:%M:%S")
        rows.append([user_id, name, rng.randint(13, 80), rng.choice(COUNTRIES), created_at])
    if count >= 2:
        # The same user again later in the file with a new country: the last row wins.
        again = list(rows[count // 2])
        again[3] = rng.choice([c for c in COUNTRIES if c != again[3]])
        rows.append(again)
    if messy:
        rows.append([count + 1, "Too Young", 7, "US", "2023-05-01"])
        rows.append(["u42", "Not A Number", 30, "DE", "2023-05-02"])
    return rows


def _songs(rng: random.Random, count: int) -> tuple[list[list[object]], list[str]]:
    """Song rows (index column first) and the distinct track ids."""
    artist_pool = ARTISTS[: max(2, min(len(ARTISTS), count // 3))]
    genres = list(GENRE_SPELLINGS)
    taken: set[str] = set()
    rows: list[list[object]] = []
    track_ids: list[str] = []
    for position in range(count):
        track_id = _track_id(rng, taken)
        track_ids.append(track_id)
        artists = rng.choice(artist_pool)
        if rng.random() < 0.1:
            # A collaboration, written like the Spotify data set does.
            artists = f"{artists};{rng.choice(artist_pool)}"
        album = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
        title = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
        if rng.random() < 0.1:
            title = f" {title} "  # text values are trimmed
        if position == count // 2 and count > 1:
            album, title = "", ""  # nullable columns, left empty
        genre = rng.choice(genres)
        features = [
            f"{rng.random():.3f}",
            f"{rng.random():.3f}",
            rng.randrange(12),
            f"{rng.uniform(-30.0, -1.0):.3f}",
            rng.randrange(2),
            f"{rng.uniform(0.02, 0.5):.4f}",
            f"{rng.random():.4f}",
            f"{rng.random() * 0.9:.4f}",
            f"{rng.uniform(0.05, 0.9):.3f}",
            f"{rng.random():.3f}",
            f"{rng.uniform(60.0, 200.0):.3f}",
            rng.choice([3, 4, 4, 4, 5]),
        ]
        rows.append(
            [
                position,
                track_id,
                artists,
                album,
                title,
                rng.randint(0, 100),
                rng.randint(60000, 400000),
                rng.choice(EXPLICIT_SPELLINGS),
                *features,
                rng.choice(GENRE_SPELLINGS[genre]),
            ]
        )
    # Two songs listed again (new genre and popularity): the last row wins.
    for source in rng.sample(rows, min(2, len(rows))):
        again = list(source)
        again[0] = len(rows)
        again[5] = rng.randint(0, 100)
        again[-1] = rng.choice(GENRE_SPELLINGS[rng.choice(genres)])
        rows.append(again)
    return rows, track_ids


def _streams(
    rng: random.Random,
    users: int,
    track_ids: list[str],
    files: int,
    per_file: int,
    messy: bool,
) -> list[list[list[object]]]:
    """Rows of each stream file."""
    # Some songs are much more popular than others; close counts still tie now and then.
    weights = [1.0 / (rank + 1) ** 0.7 for rank in range(len(track_ids))]
    ranked = list(track_ids)
    rng.shuffle(ranked)
    form_names = [name for name, _ in TIME_FORMS]
    form_weights = [weight for _, weight in TIME_FORMS]
    earlier: list[tuple[int, str, dt.datetime]] = []  # plays of earlier files, whole seconds only
    result: list[list[list[object]]] = []
    for _ in range(files):
        repeats_within = max(1, per_file // 100) if per_file >= 20 else 0
        repeats_across = max(1, per_file // 100) if per_file >= 20 and earlier else 0
        fresh = per_file - repeats_within - repeats_across
        rows: list[list[object]] = []
        plays: list[tuple[int, str, dt.datetime]] = []
        for _ in range(fresh):
            user_id = rng.randint(1, users)
            track_id = rng.choices(ranked, weights)[0]
            instant = STREAMS_START + dt.timedelta(seconds=rng.randrange(STREAMS_SECONDS))
            form = rng.choices(form_names, form_weights)[0]
            if form == "space_fraction":
                instant = instant.replace(microsecond=rng.randrange(1, 1_000_000))
            else:
                plays.append((user_id, track_id, instant))
            rows.append([user_id, track_id, render_time(instant, form)])
        for _ in range(repeats_across):
            # A play already delivered in an earlier file, possibly in another form.
            user_id, track_id, instant = rng.choice(earlier)
            form = rng.choice([name for name in form_names if name != "space_fraction"])
            rows.insert(rng.randrange(len(rows) + 1), [user_id, track_id, render_time(instant, form)])
        for _ in range(repeats_within):
            # The same row twice in one file.
            rows.insert(rng.randrange(len(rows) + 1), list(rng.choice(rows)))
        earlier.extend(plays)
        result.append(rows)
    if messy and result:
        result[0].insert(len(result[0]) // 2, [1, track_ids[0], "2024-03-02 25:61:00"])
        unknown = _track_id(rng, set(track_ids))
        result[-1].append([1, unknown, "2024-03-03 12:00:00"])
    return result


def generate(
    out_dir: Path,
    *,
    users: int = 60,
    songs: int = 80,
    streams_files: int = 3,
    streams_per_file: int = 400,
    seed: int = 7,
    messy: bool = False,
) -> None:
    """Write a raw-bucket-shaped folder of users, songs and stream files under ``out_dir``.

    Existing files with the same names are overwritten; other files are left alone.
    """
    if users < 1 or songs < 1 or streams_files < 0 or streams_per_file < 0:
        raise ValueError("users and songs must be >= 1, stream counts >= 0")
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    user_rows = _users(rng, users, messy)
    song_rows, track_ids = _songs(rng, songs)
    stream_files = _streams(rng, users, track_ids, streams_files, streams_per_file, messy)

    _write_csv(out_dir / "metadata" / "users" / "users.csv", USERS_HEADER, user_rows)
    _write_csv(out_dir / "metadata" / "songs" / "songs.csv", SONGS_HEADER, song_rows)
    for number, rows in enumerate(stream_files, start=1):
        header = STREAMS_HEADER
        if messy:
            # An extra column the schema does not know: dropped with a warning.
            header = [*STREAMS_HEADER, "device"]
            rows = [[*row, rng.choice(["ios", "android", "web"])] for row in rows]
        _write_csv(out_dir / "streams" / f"streams{number}.csv", header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write deterministic raw-bucket-shaped sample CSVs.")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (mirrors the raw bucket)")
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--songs", type=int, default=80)
    parser.add_argument("--streams-files", type=int, default=3)
    parser.add_argument("--streams-per-file", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--messy", action="store_true", help="add rows that break the rules (for tests)")
    args = parser.parse_args()
    generate(
        args.out,
        users=args.users,
        songs=args.songs,
        streams_files=args.streams_files,
        streams_per_file=args.streams_per_file,
        seed=args.seed,
        messy=args.messy,
    )


if __name__ == "__main__":
    main()
