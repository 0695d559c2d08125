"""Names that moved between Airflow 3.0 (Amazon MWAA, with its provider pins) and
newer 3.x releases and providers.

Import them from here so the same code runs on both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

try:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

__all__ = ["AirflowFailException", "BaseHook", "dag_bag", "s3_object_metadata"]


def dag_bag(dag_folder: str):  # noqa: ANN201 - DagBag's module differs by version
    """A DagBag of dag_folder (airflow.dag_processing.dagbag since 3.1, airflow.models before)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=dag_folder)


def s3_object_metadata(s3: S3Hook, bucket: str, prefix: str) -> Iterable[dict[str, Any]]:
    """list_objects_v2's entries (Key, ETag, Size, ...) under prefix.

    S3Hook.iter_file_metadata arrived in amazon provider 9.13.0, which also deprecates
    get_file_metadata (a list of the same entries); MWAA's Airflow 3.0.6 pins 9.12.0.
    """
    if hasattr(s3, "iter_file_metadata"):
        return s3.iter_file_metadata(prefix=prefix, bucket_name=bucket)
    return s3.get_file_metadata(prefix=prefix, bucket_name=bucket)  # amazon provider < 9.13 (MWAA)
