"""Names that moved between Airflow 3.0 (Amazon MWAA) and newer 3.x releases.

Import them from here so the same code runs on both.
"""

from __future__ import annotations

try:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

__all__ = ["AirflowFailException", "BaseHook", "dag_bag"]


def dag_bag(dag_folder: str):  # noqa: ANN201 - DagBag's module differs by version
    """A DagBag of dag_folder (airflow.dag_processing.dagbag since 3.1, airflow.models before)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=dag_folder)
