"""deploy/mwaa_deploy.py: the bucket laid out as MWAA expects, the environment updated with the right version.

S3 is moto (the session's moto server from conftest: `mock_aws` would reset
that server's shared in-process state). moto has no MWAA backend, so the MWAA
client is a botocore Stubber: every request and canned response is checked
against the real MWAA API model, and the tests read what it was called with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy import mwaa_deploy
from deploy.mwaa_deploy import DeployError, deploy
from localdev.local_stack import MOTO_CREDENTIALS, REGION, s3_client

PROJECT_DIR = Path(__file__).resolve().parents[2]
ENV_NAME = "music-kpis-test"
# MWAA_PYTHON: an interpreter with MWAA's packages (Python 3.12, apache-airflow==3.0.6 and the pins of
# deploy/mwaa/requirements.txt); when set, the uploaded tree is also parsed with it.
INTERPRETERS = [sys.executable, *filter(None, [os.environ.get("MWAA_PYTHON")])]
MWAA_CONSTRAINT = (
    '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/constraints-3.12.txt"'
)


@pytest.fixture
def s3(moto_endpoint: str):
    return s3_client(moto_endpoint)


def make_bucket(s3, versioned: bool = True) -> str:
    name = f"mwaa-source-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def bucket(s3) -> str:
    return make_bucket(s3)


@pytest.fixture
def mwaa():
    client = boto3.client("mwaa", region_name=REGION, **MOTO_CREDENTIALS)
    with Stubber(client) as stub:
        client.stub = stub
        client.received = []
        client.meta.events.register(
            "before-parameter-build.mwaa.UpdateEnvironment", lambda params, **_: client.received.append(dict(params))
        )
        yield client
        stub.assert_no_pending_responses()


def environment(bucket: str, **fields: str) -> dict:
    """A get_environment response of an AVAILABLE Airflow 3.0.6 environment reading from bucket."""
    env = {
        "Name": ENV_NAME,
        "Status": "AVAILABLE",
        "AirflowVersion": "3.0.6",
        "SourceBucketArn": f"arn:aws:s3:::{bucket}",
        "DagS3Path": "dags",
        "RequirementsS3Path": "requirements.txt",
    }
    return {"Environment": {**env, **fields}}


def expect_get(mwaa, bucket: str, **fields: str) -> None:
    mwaa.stub.add_response("get_environment", environment(bucket, **fields), {"Name": ENV_NAME})


def expect_update(mwaa) -> None:
    mwaa.stub.add_response("update_environment", {"Arn": f"arn:aws:airflow:{REGION}:123456789012:environment/x"})


def keys(s3, bucket: str, prefix: str = "") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def versions(s3, bucket: str, key: str) -> list[dict]:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return [v for v in listed if v["Key"] == key]


def latest_version(s3, bucket: str, key: str) -> str:
    return next(v["VersionId"] for v in versions(s3, bucket, key) if v["IsLatest"])


def quiet(_: str) -> None:
    pass


def project_files() -> set[str]:
    """What MWAA must get, from the project tree: DAG files, include/ Python, SQL and YAML."""
    files = {f"dags/{path.name}" for path in (PROJECT_DIR / "dags").glob("*.py")}
    for path in (PROJECT_DIR / "include").rglob("*"):
        if path.is_file() and path.suffix in {".py", ".sql", ".yaml"} and "__pycache__" not in path.parts:
            files.add(f"dags/{path.relative_to(PROJECT_DIR).as_posix()}")
    return files


def test_bucket_is_laid_out_as_mwaa_expects_and_the_environment_gets_the_requirements_version(mwaa, s3, bucket):
    expect_get(mwaa, bucket)
    expect_update(mwaa)

    deploy(mwaa, s3, ENV_NAME, log=quiet)

    uploaded = keys(s3, bucket)
    assert uploaded == project_files() | {"dags/.airflowignore", "requirements.txt"}
    for key in (
        "dags/music_streaming_kpis.py",
        "dags/include/__init__.py",
        "dags/include/music_kpis/__init__.py",
        "dags/include/music_kpis/warehouse.py",
        "dags/include/sql/migrations/0001_create_tables.sql",
        "dags/include/schemas/songs.yaml",
    ):
        assert key in uploaded
    assert {k for k in uploaded if k.startswith("dags/include/sql/") and k.endswith(".sql")}
    assert not [k for k in uploaded if "__pycache__" in k or k.endswith(".pyc") or "tests" in k.split("/")]
    assert not [k for k in uploaded if k.startswith(("deploy/", "data/", "docs/", "dags/deploy/", "dags/data/"))]

    body = s3.get_object(Bucket=bucket, Key="requirements.txt")["Body"].read()
    assert body == (PROJECT_DIR / "deploy/mwaa/requirements.txt").read_bytes()
    ignore = s3.get_object(Bucket=bucket, Key="dags/.airflowignore")["Body"].read()
    assert ignore == (PROJECT_DIR / "dags" / ".airflowignore").read_bytes()  # the committed file
    assert "include/" in ignore.decode().splitlines()
    # Only what runs in Airflow: no local tooling, tests, benchmarks or docs.
    assert not [k for k in uploaded if {"localdev", "tests", "bench", "docs", "docker"} & set(k.split("/"))]

    assert mwaa.received == [
        {
            "Name": ENV_NAME,
            "RequirementsS3Path": "requirements.txt",
            "RequirementsS3ObjectVersion": latest_version(s3, bucket, "requirements.txt"),
        }
    ]


def test_second_deploy_uploads_code_only_and_prunes_deleted_include_files(mwaa, s3, bucket):
    expect_get(mwaa, bucket)
    expect_update(mwaa)
    first = deploy(mwaa, s3, ENV_NAME, log=quiet)
    running = first.versions["requirements.txt"]
    s3.put_object(Bucket=bucket, Key="dags/include/music_kpis/removed_module.py", Body=b"x = 1\n")
    s3.put_object(Bucket=bucket, Key="dags/another_teams_dag.py", Body=b"# not ours\n")

    # The environment now runs that requirements version; it is busy, which only matters for an update.
    expect_get(mwaa, bucket, Status="UPDATING", RequirementsS3ObjectVersion=running)
    second = deploy(mwaa, s3, ENV_NAME, log=quiet)

    assert second.update is None
    assert len(mwaa.received) == 1  # the first deploy's update only
    assert [v["VersionId"] for v in versions(s3, bucket, "requirements.txt")] == [running]
    assert second.stale == ["dags/include/music_kpis/removed_module.py"]
    uploaded = keys(s3, bucket)
    assert "dags/include/music_kpis/removed_module.py" not in uploaded
    assert "dags/another_teams_dag.py" in uploaded
    assert len(versions(s3, bucket, "dags/music_streaming_kpis.py")) == 2


def test_uploaded_tree_imports_with_only_the_dag_folder_on_sys_path(mwaa, s3, bucket, tmp_path):
    expect_get(mwaa, bucket)
    expect_update(mwaa)
    deploy(mwaa, s3, ENV_NAME, log=quiet)
    tree = download(s3, bucket, "dags/", tmp_path / "usr-local-airflow-dags")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    code = """
import json, sys
sys.path.insert(0, sys.argv[1])
import include
from include.music_kpis import schemas, warehouse
print(json.dumps({
    "include": include.__file__,
    "sql_dir": str(warehouse.SQL_DIR),
    "sql_files": sorted(p.name for p in warehouse.SQL_DIR.glob("*.sql")),
    "schema_dir": str(schemas.SCHEMA_DIR),
    "songs_key": schemas.load_schema("songs").key[0],
}))
"""
    # -I: no PYTHONPATH, no user site, no script or current directory on sys.path.
    run = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tree)], cwd=elsewhere, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])

    assert Path(found["include"]).is_relative_to(tree)
    sql_dir = Path(found["sql_dir"])
    assert sql_dir == tree / "include" / "sql"
    assert found["sql_files"] == sorted(p.name for p in (PROJECT_DIR / "include/sql").glob("*.sql"))
    assert "load_streams.sql" in found["sql_files"]
    assert Path(found["schema_dir"]) == tree / "include" / "schemas"
    assert found["songs_key"] == "track_id"


@pytest.mark.parametrize("python", INTERPRETERS)
def test_uploaded_tree_parses_as_the_dags_with_include_ignored(python, mwaa, s3, bucket, tmp_path):
    """What MWAA's DAG processor does: the DAG folder is the bundle root on sys.path, .airflowignore applies."""
    expect_get(mwaa, bucket)
    expect_update(mwaa)
    deploy(mwaa, s3, ENV_NAME, log=quiet)
    tree = download(s3, bucket, "dags/", tmp_path / "dags")

    code = """
import json, sys
sys.path.append(sys.argv[1])
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.0
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": bag.import_errors, "files": sorted(bag.file_last_changed)}))
"""
    env = {**_environ(), "AIRFLOW__CORE__DAGS_FOLDER": str(tree), "AIRFLOW__MUSIC_KPIS__BACKEND": "redshift"}
    run = subprocess.run(
        [python, "-c", code, str(tree)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    parsed = json.loads(run.stdout.strip().splitlines()[-1])

    assert parsed["errors"] == {}
    assert parsed["dags"] == ["music_kpis_report", "music_streaming_kpis"]
    assert parsed["files"] == [str(tree / "music_kpis_report.py"), str(tree / "music_streaming_kpis.py")]


def test_project_filters_custom_paths_and_startup_script(mwaa, s3, bucket, tmp_path):
    project = tmp_path / "project"
    files = {
        "dags/my_dag.py": "# dag\n",
        "dags/README.md": "not uploaded\n",
        "dags/.airflowignore": "legacy/\ninclude/\n",
        "include/__init__.py": "",
        "include/pkg/__init__.py": "",
        "include/pkg/mod.py": "X = 1\n",
        "include/pkg/notes.txt": "not uploaded\n",
        "include/pkg/__pycache__/mod.cpython-311.pyc": "bytecode",
        "include/pkg/__pycache__/stray.py": "not uploaded\n",
        "include/.scratch/tmp.py": "not uploaded\n",
        "include/sql/a.sql": "SELECT 1;\n",
        "include/sql/reports/b.sql": "SELECT 2;\n",
        "include/schemas/s.yaml": "a: 1\n",
        "tests/test_x.py": "not uploaded\n",
        "localdev/demo.py": "not uploaded: local tooling\n",
        "bench/run.py": "not uploaded\n",
        "deploy/mwaa/requirements.txt": "pyyaml==6.0.2\n",
        "deploy/mwaa/startup.sh": "#!/bin/bash\nexport EXAMPLE=1\n",
    }
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    expect_get(mwaa, bucket, DagS3Path="airflow/dags/", RequirementsS3Path="airflow/requirements.txt")
    expect_update(mwaa)

    deploy(mwaa, s3, ENV_NAME, project_dir=project, log=quiet)

    assert keys(s3, bucket) == {
        "airflow/dags/my_dag.py",
        "airflow/dags/.airflowignore",
        "airflow/dags/include/__init__.py",
        "airflow/dags/include/pkg/__init__.py",
        "airflow/dags/include/pkg/mod.py",
        "airflow/dags/include/sql/a.sql",
        "airflow/dags/include/sql/reports/b.sql",
        "airflow/dags/include/schemas/s.yaml",
        "airflow/requirements.txt",
        "startup.sh",
    }
    ignore = s3.get_object(Bucket=bucket, Key="airflow/dags/.airflowignore")["Body"].read()
    assert ignore == b"legacy/\ninclude/\n"
    assert mwaa.received == [
        {
            "Name": ENV_NAME,
            "RequirementsS3Path": "airflow/requirements.txt",
            "RequirementsS3ObjectVersion": latest_version(s3, bucket, "airflow/requirements.txt"),
            "StartupScriptS3Path": "startup.sh",
            "StartupScriptS3ObjectVersion": latest_version(s3, bucket, "startup.sh"),
        }
    ]


def test_new_environment_bootstrap_uploads_to_the_given_bucket_without_update(mwaa, s3, bucket):
    mwaa.stub.add_client_error("get_environment", "ResourceNotFoundException", http_status_code=404)
    lines: list[str] = []

    result = deploy(mwaa, s3, ENV_NAME, bucket=bucket, log=lines.append)

    assert result.update is None and mwaa.received == []
    assert "requirements.txt" in keys(s3, bucket)
    assert "dags/music_streaming_kpis.py" in keys(s3, bucket)
    version = latest_version(s3, bucket, "requirements.txt")
    assert any(f"RequirementsS3ObjectVersion {version}" in line for line in lines)


def test_refuses_a_bucket_the_environment_does_not_read(mwaa, s3, bucket):
    expect_get(mwaa, "some-other-bucket")
    with pytest.raises(DeployError, match="reads its code from s3://some-other-bucket"):
        deploy(mwaa, s3, ENV_NAME, bucket=bucket, log=quiet)
    assert keys(s3, bucket) == set()


def test_refuses_an_unversioned_bucket_before_writing(mwaa, s3):
    unversioned = make_bucket(s3, versioned=False)
    expect_get(mwaa, unversioned)
    with pytest.raises(DeployError, match="versioning"):
        deploy(mwaa, s3, ENV_NAME, log=quiet)
    assert keys(s3, unversioned) == set()


def test_refuses_a_requirements_update_while_the_environment_is_busy(mwaa, s3, bucket):
    expect_get(mwaa, bucket, Status="UPDATING")
    with pytest.raises(DeployError, match="UPDATING"):
        deploy(mwaa, s3, ENV_NAME, log=quiet)
    assert keys(s3, bucket) == set()
    assert mwaa.received == []


def test_dry_run_writes_nothing(mwaa, s3, bucket):
    expect_get(mwaa, bucket)
    result = deploy(mwaa, s3, ENV_NAME, dry_run=True, log=quiet)
    assert keys(s3, bucket) == set()
    assert result.update is None and mwaa.received == []
    assert {u.key for u in result.environment_files} == {"requirements.txt"}
    assert {u.key for u in result.code} == project_files() | {"dags/.airflowignore"}


def test_command_line(mwaa, s3, bucket, monkeypatch, capsys):
    monkeypatch.setattr(mwaa_deploy, "clients", lambda region: (mwaa, s3))
    expect_get(mwaa, bucket)
    assert mwaa_deploy.main(["--environment", ENV_NAME, "--region", REGION, "--dry-run"]) == 0
    assert f"environment {ENV_NAME} (AVAILABLE): s3://{bucket}/dags/" in capsys.readouterr().out

    mwaa.stub.add_client_error("get_environment", "ResourceNotFoundException", http_status_code=404)
    assert mwaa_deploy.main(["--environment", ENV_NAME, "--dry-run"]) == 1
    assert "ResourceNotFoundException" in capsys.readouterr().err
    assert keys(s3, bucket) == set()


def pins(path: Path) -> dict[str, Requirement]:
    requirements = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            requirements[canonicalize_name(requirement.name)] = requirement
    return requirements


def test_mwaa_requirements_pin_the_same_packages_to_the_airflow_3_0_6_constraints():
    mwaa_file = PROJECT_DIR / "deploy/mwaa/requirements.txt"
    assert MWAA_CONSTRAINT in mwaa_file.read_text().splitlines()
    mwaa_pins = pins(mwaa_file)
    # Every runtime package of the project, nothing else; each pinned exactly.
    assert set(mwaa_pins) == set(pins(PROJECT_DIR / "requirements.txt"))
    for requirement in mwaa_pins.values():
        assert len(requirement.specifier) == 1 and next(iter(requirement.specifier)).operator == "==", requirement
    versions_of = {name: str(next(iter(r.specifier)).version) for name, r in mwaa_pins.items()}
    # The versions in constraints-3.0.6/constraints-3.12.txt (what MWAA's Airflow 3.0.6 image ships).
    assert versions_of["apache-airflow-providers-amazon"] == "9.12.0"
    assert versions_of["apache-airflow-providers-common-sql"] == "1.27.5"
    assert versions_of["apache-airflow-providers-postgres"] == "6.2.3"
    assert versions_of["pyarrow"] == "18.1.0"
    # S3 goes through the amazon provider's S3Hook: no second AWS library (awswrangler pulled
    # pandas into every parse of the DAG file).
    assert not {"awswrangler", "s3fs", "smart-open"} & set(mwaa_pins)


def download(s3, bucket: str, prefix: str, target: Path) -> Path:
    for key in keys(s3, bucket, prefix):
        path = target / key[len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return target


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}


def test_an_airflowignore_that_lets_the_dag_processor_into_include_is_refused(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "my_dag.py").write_text("# dag\n")
    (tmp_path / "dags" / ".airflowignore").write_text("legacy/\n")
    with pytest.raises(DeployError, match="include/"):
        mwaa_deploy.code_uploads(tmp_path, "dags")


def test_what_runs_in_airflow_imports_no_local_tooling():
    """dags/ and include/ are deployed alone: nothing there may need localdev/, tests/ or bench/."""
    sources = [*(PROJECT_DIR / "dags").glob("*.py"), *(PROJECT_DIR / "include").rglob("*.py")]
    offenders = [
        str(path.relative_to(PROJECT_DIR))
        for path in sources
        if any(
            line.lstrip().startswith(f"{verb} {package}")
            for line in path.read_text().splitlines()
            for verb in ("import", "from")
            for package in ("localdev", "tests", "bench", "deploy")
        )
    ]
    assert offenders == []
