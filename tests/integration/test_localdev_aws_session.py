"""The demo's AWS session factory: hooks share botocore's parsed models and still reach S3 (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.providers.amazon.aws.hooks import base_aws
from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from include.music_kpis.settings import AWS_CONN_ID
from localdev import demo
from localdev.aws_session import SharedLoaderSessionFactory
from localdev.local_stack import aws_connection, connection_environment, create_buckets, s3_client


def test_the_demo_names_the_factory_the_provider_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in demo.airflow_home_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert base_aws.resolve_session_factory() is SharedLoaderSessionFactory


def test_hooks_share_one_loader_and_still_reach_s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(connection_environment(AWS_CONN_ID), aws_connection(moto_endpoint))
    monkeypatch.setattr(base_aws, "SessionFactory", SharedLoaderSessionFactory)
    bucket = "session-factory-test"
    create_buckets(moto_endpoint, bucket)
    s3_client(moto_endpoint).put_object(Bucket=bucket, Key="a/one.csv", Body=b"x")

    hooks = [S3Hook(aws_conn_id=AWS_CONN_ID) for _ in range(3)]
    loaders = [hook.get_session()._session.get_component("data_loader") for hook in hooks]

    assert all(loader is loaders[0] for loader in loaders)
    # boto3 adds its data folder to the loader of each session: once, not once per session.
    assert len(loaders[0].search_paths) == len(set(loaders[0].search_paths))
    for hook in hooks:
        assert hook.list_keys(bucket, prefix="a/") == ["a/one.csv"]
