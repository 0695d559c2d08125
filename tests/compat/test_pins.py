"""The compat run installs what MWAA installs: the runtime pins of
deploy/mwaa/requirements.txt, under (a stand-in for) Airflow 3.0.6's constraint set."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT_DIR = Path(__file__).resolve().parents[2]
MWAA_REQUIREMENTS = PROJECT_DIR / "deploy" / "mwaa" / "requirements.txt"
COMPAT_REQUIREMENTS = PROJECT_DIR / "tests" / "compat" / "requirements-airflow-3.0.txt"
COMPAT_CONSTRAINTS = PROJECT_DIR / "tests" / "compat" / "constraints-airflow-3.0.6.txt"


def pins(path: Path) -> dict[str, str]:
    """name -> version of each `name==version` line (options such as --constraint left out)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line} is not pinned"
        found[canonicalize_name(requirement.name)] = specifier.version
    return found


def test_compat_run_pins_what_mwaa_installs() -> None:
    mwaa, compat = pins(MWAA_REQUIREMENTS), pins(COMPAT_REQUIREMENTS)
    assert {name: compat.get(name) for name in mwaa} == mwaa
    assert compat["apache-airflow"] == "3.0.6"
    assert "--constraint" in MWAA_REQUIREMENTS.read_text() and "constraints-3.0.6/" in MWAA_REQUIREMENTS.read_text()


def test_constraint_stand_in_is_resolved_from_the_current_mwaa_pins() -> None:
    """After a pin changes in deploy/mwaa/requirements.txt, the stand-in must be regenerated (see its header)."""
    mwaa, constraints = pins(MWAA_REQUIREMENTS), pins(COMPAT_CONSTRAINTS)
    assert {name: constraints.get(name) for name in mwaa} == mwaa
    assert constraints["apache-airflow"] == "3.0.6"


def test_test_only_pins_do_not_contradict_the_constraint_set() -> None:
    compat, constraints = pins(COMPAT_REQUIREMENTS), pins(COMPAT_CONSTRAINTS)
    clashes = {name: (v, constraints[name]) for name, v in compat.items() if constraints.get(name, v) != v}
    assert clashes == {}
