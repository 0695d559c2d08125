"""The parts of the checks after loading that need no warehouse (the checks run in
tests/integration/test_checks_and_alerts.py, their SQL in the Redshift gate)."""

from __future__ import annotations

import datetime

import jinja2
import pytest

from include.music_kpis.kpis import kpi_tables
from include.music_kpis.quality_checks import PARTITION_CLAUSE, column_mapping, recomputed_dates, reconciled_tables


def test_recomputed_dates_are_iso_dates() -> None:
    assert recomputed_dates([["2026-11-21"], ("2026-11-22",)]) == ["2026-11-21", "2026-11-22"]
    assert recomputed_dates([[datetime.date(2026, 1, 2)]]) == ["2026-01-02"]
    assert recomputed_dates([]) == [] and recomputed_dates(None) == []


@pytest.mark.parametrize("value", ["2026-11-22'); DROP TABLE streams; --", "yesterday", ""])
def test_anything_but_a_date_is_refused_before_it_becomes_sql(value: str) -> None:
    with pytest.raises(ValueError):
        recomputed_dates([[value]])


def test_partition_clause_renders_the_pulled_dates() -> None:
    class TaskInstance:
        def xcom_pull(self, task_ids: str) -> list[str]:
            assert task_ids == "recomputed_dates"
            return ["2026-11-21", "2026-11-22"]

    rendered = jinja2.Template(PARTITION_CLAUSE).render(ti=TaskInstance())
    assert rendered == "listen_date IN ('2026-11-21', '2026-11-22')"


def test_every_kpi_key_column_is_checked_for_nulls() -> None:
    for kpi in kpi_tables():
        mapping = column_mapping(kpi)
        assert all(mapping[column]["null_check"] == {"equal_to": 0} for column in kpi.key)
        assert set(mapping) <= set(kpi.column_names)


def test_every_kpi_table_counting_plays_is_reconciled() -> None:
    assert reconciled_tables() == ["genre_kpis", "hourly_kpis"]
