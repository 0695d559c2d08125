"""The deployment choices come from Airflow's configuration, never from Variables."""

from __future__ import annotations

import pytest

from include.music_kpis.settings import BACKEND, METADATA_SOURCE


@pytest.mark.parametrize("choice", [BACKEND, METADATA_SOURCE], ids=lambda c: c.option)
def test_choice_is_read_from_the_music_kpis_config_section(monkeypatch: pytest.MonkeyPatch, choice) -> None:
    monkeypatch.delenv(choice.environment_variable, raising=False)
    assert choice.read() == choice.default
    other = next(value for value in choice.allowed if value != choice.default)
    monkeypatch.setenv(f"AIRFLOW__MUSIC_KPIS__{choice.option.upper()}", other)
    assert choice.read() == other


@pytest.mark.parametrize("choice", [BACKEND, METADATA_SOURCE], ids=lambda c: c.option)
def test_a_variable_of_the_same_name_does_not_shape_the_dag(monkeypatch: pytest.MonkeyPatch, choice) -> None:
    """Parsing reads no Variable (no secrets-backend call per parse on MWAA)."""
    monkeypatch.delenv(choice.environment_variable, raising=False)
    other = next(value for value in choice.allowed if value != choice.default)
    monkeypatch.setenv(f"AIRFLOW_VAR_MUSIC_KPIS_{choice.option.upper()}", other)
    assert choice.read() == choice.default


@pytest.mark.parametrize("choice", [BACKEND, METADATA_SOURCE], ids=lambda c: c.option)
def test_unknown_value_is_refused_with_the_allowed_ones(monkeypatch: pytest.MonkeyPatch, choice) -> None:
    monkeypatch.setenv(choice.environment_variable, "snowflake")
    with pytest.raises(ValueError, match=rf"\[music_kpis\] {choice.option} must be one of"):
        choice.read()
