"""The demo's AWS session factory: every hook's boto3 session shares one botocore data loader.

botocore parses its JSON models (the endpoints, the S3 service model and its rule set) again for
every new session, and the Amazon provider makes one session per hook: about 0.2 s of CPU each
time. On a worker every task is its own process and makes one or two hooks, so it does not matter
there; `make demo` runs all the tasks of a run in one process (dag.test()), where it added up to
seconds. The provider shares a loader the same way for its async sessions; this is its documented
extension point (`[aws] session_factory`), set only by the demo.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.loaders
import botocore.session
from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory


class _UniquePaths(list[str]):
    """Search paths that keep one copy of each: boto3 adds its data folder to the loader of every session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


_LOADER = botocore.loaders.Loader(extra_search_paths=_UniquePaths())


class SharedLoaderSessionFactory(BaseSessionFactory):
    """The provider's session factory, with one data loader (and its parsed models) per process."""

    def _create_basic_session(self, session_kwargs: dict[str, Any]) -> boto3.session.Session:
        session = botocore.session.get_session()
        session.register_component("data_loader", _LOADER)
        return boto3.session.Session(botocore_session=session, **session_kwargs)
