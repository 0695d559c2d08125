"""`make demo` starts the DAG's process first (localdev/demo.py): the modules it imports before
that, and the module that process starts from (localdev/dag_runner.py), load nothing heavy.
The DAG's process is the start's critical path; Airflow, pyarrow and boto3 cost it 0.3-2 s."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers.fresh_interpreter import printed_words

HEAVY = ("airflow", "pyarrow", "boto3", "include.music_kpis.schemas")

LOADED = textwrap.dedent(
    """
    import sys
    import {module}
    print(*[name for name in {heavy} if name in sys.modules] or ["none"])
    """
)


@pytest.mark.parametrize("module", ["localdev.demo", "localdev.dag_runner"])
def test_make_demo_imports_nothing_heavy_before_the_dag_process_starts(module: str) -> None:
    assert printed_words(LOADED.format(module=module, heavy=HEAVY)) == ["none"]
