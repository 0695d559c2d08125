"""localdev.local_stack's embedded PostgreSQL: started, stopped and started again in one process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from localdev.local_stack import postgres_server
from localdev.outputs import query


@pytest.mark.integration
def test_a_stopped_server_starts_again_in_the_same_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """make bench stops the server after each first load, makes its data anew and starts it again."""
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    for _ in range(2):
        with postgres_server(tmp_path) as server:
            assert query(server, "SELECT 1") == [(1,)]
        shutil.rmtree(tmp_path / "pgdata")
