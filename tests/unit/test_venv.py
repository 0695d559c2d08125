"""The venv `make venv` builds holds compiled bytecode (Makefile, --compile-bytecode).

Without it, where PYTHONDONTWRITEBYTECODE is set, every Airflow process
compiles its imports from source again: some 2.5 s each, 7 s of a make demo run.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

HEAVY_IMPORTS = ["airflow", "airflow.providers.amazon", "cadwyn", "fastapi", "pyarrow", "sqlalchemy"]


@pytest.mark.parametrize("module", HEAVY_IMPORTS)
def test_installed_packages_are_compiled(module: str) -> None:
    source = importlib.import_module(module).__file__
    assert source is not None
    cached = Path(importlib.util.cache_from_source(source))
    assert cached.exists(), f"{module} has no compiled bytecode: rebuild the venv (rm -rf .venv && make venv)"
