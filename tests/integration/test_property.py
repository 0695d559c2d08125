"""Property: any sequence of incremental runs (repeats, late dimensions, updates,
bad rows) leaves every table and KPI equal to a from-scratch computation in
plain Python over all files received so far (tests/kpi_oracle.py)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Stack, fresh_database
from tests.helpers.warehouse_checks import assert_warehouse_matches

pytestmark = pytest.mark.integration

USER_IDS = list(range(1, 7))
TRACK_IDS = ["t1", "t2", "T3", "t4", "t_5"]  # "T3" < "t1" in byte order
GENRES = [" Pop", "rock", "ROCK ", "jazz"]
ARTISTS = ["Abba", "abba", "Zed", "Émile"]
BASE = dt.datetime(2024, 6, 1, 22, 0, 0)


def timestamp_text(moment: dt.datetime, form: int) -> str:
    if form == 0:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if form == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    shifted = moment + dt.timedelta(hours=2)  # the same instant at +02:00
    return shifted.strftime("%Y-%m-%dT%H:%M:%S+02:00")


users_rows = st.lists(
    st.tuples(st.sampled_from(USER_IDS), st.sampled_from(["ann", "bob"]), st.integers(10, 125)),
    min_size=1,
    max_size=6,
)
songs_rows = st.lists(
    st.tuples(
        st.sampled_from(TRACK_IDS),
        st.sampled_from(ARTISTS),
        st.sampled_from(GENRES),
        st.integers(0, 100),
        st.integers(1000, 300_000),
    ),
    min_size=1,
    max_size=6,
)
stream_rows = st.lists(
    st.tuples(
        st.sampled_from([*USER_IDS, 99]), st.sampled_from([*TRACK_IDS, "unknown"]), st.integers(0, 8), st.integers(0, 2)
    ),  # minutes * 30 after BASE (crosses midnight), form
    min_size=1,
    max_size=25,
)
one_run = st.fixed_dictionaries(
    {"users": st.none() | users_rows, "songs": st.none() | songs_rows, "streams": st.lists(stream_rows, max_size=2)}
)


def write_run(raw: Path, index: int, run: dict) -> None:
    def write(path: Path, header: list[str], rows: list[list]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows([header, *rows])

    # Keys sort in run order, so "the later run wins" is also "the later key wins" for the oracle.
    if run["users"]:
        write(
            raw / f"metadata/users/run{index:02d}.csv",
            ["user_id", "user_name", "user_age", "user_country", "created_at"],
            [[u, n, a, "NO", "2024-01-01"] for u, n, a in run["users"]],
        )
    if run["songs"]:
        write(
            raw / f"metadata/songs/run{index:02d}.csv",
            ["track_id", "artists", "album_name", "track_name", "popularity", "duration_ms", "explicit", "track_genre"],
            [[t, a, "", "", p, d, "true", g] for t, a, g, p, d in run["songs"]],
        )
    for part, rows in enumerate(run["streams"]):
        write(
            raw / f"streams/run{index:02d}_{part}.csv",
            ["user_id", "track_id", "listen_time"],
            [[u, t, timestamp_text(BASE + dt.timedelta(minutes=30 * m), f)] for u, t, m, f in rows],
        )


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "4")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(runs=st.lists(one_run, min_size=2, max_size=3))
def test_incremental_runs_equal_a_recomputation(moto_endpoint, postgres, airflow_db, runs: list[dict]) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(postgres) as db,
        pytest.MonkeyPatch.context() as mp,
    ):
        stack = Stack.create(moto_endpoint, db)
        stack.activate(mp)
        mp.setenv("AIRFLOW_VAR_MUSIC_KPIS_REJECT_THRESHOLD", "1")  # keep files; check row rules only
        raw = Path(tmp) / "raw"
        raw.mkdir()
        for index, run in enumerate(runs):
            write_run(raw, index, run)
            stack.upload(raw)
            result = stack.run_dag()
            assert result.state == "success"
            assert_warehouse_matches(stack, raw, Path(tmp) / f"out{index}", reject_threshold=1.0)
            parked = stack.query("SELECT COUNT(*) FROM streams_parked")[0][0]
            assert result.summary["parked_streams"] == parked
