"""The DAG's connections and variables resolve from AWS Secrets Manager, set up as docs/mwaa.md says.

The Airflow configuration options and the secrets (names and values, all
placeholders) are read from docs/mwaa.md itself, created in the session's moto
server, and resolved by a fresh Airflow process configured only through
AIRFLOW__SECRETS__BACKEND / AIRFLOW__SECRETS__BACKEND_KWARGS, as MWAA does:
through the task SDK's lookup (what tasks use), Airflow's core lookup, the
AWS hooks and the DAG's parse-time backend choice.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from include.music_kpis import settings
from include.music_kpis.settings import AWS_CONN_ID, REDSHIFT_COPY_CONN_ID, WAREHOUSE_CONN_ID
from localdev.local_stack import MOTO_CREDENTIALS, REGION

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOC = PROJECT_DIR / "docs" / "mwaa.md"
BACKEND_CLASS = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
CONNECTION_IDS = (WAREHOUSE_CONN_ID, AWS_CONN_ID, REDSHIFT_COPY_CONN_ID)
CONNECTIONS_PREFIX = "airflow/connections/"
VARIABLES_PREFIX = "airflow/variables/"
SOURCES = [PROJECT_DIR / "dags", PROJECT_DIR / "include" / "music_kpis"]


def documented_options() -> dict[str, str]:
    """The `section.option = value` lines of docs/mwaa.md's configuration options."""
    return dict(re.findall(r"^((?:secrets|music_kpis)\.\w+) = (.+)$", DOC.read_text(), re.MULTILINE))


def documented_secrets() -> dict[str, str]:
    """Every `aws secretsmanager create-secret --name N --secret-string 'V'` of docs/mwaa.md."""
    pattern = r"create-secret --name (\S+)\s+(?:\\\s+)?--secret-string '([^']*)'"
    return dict(re.findall(pattern, DOC.read_text()))


def variables_read_by_the_code() -> tuple[set[str], set[str]]:
    """(every variable name, those without a default): the Variables of the settings module.

    The tasks read Variables only through it; nothing else in dags/ or include/ calls Variable.get.
    """
    text = "\n".join(path.read_text() for folder in SOURCES for path in folder.glob("*.py"))
    assert "Variable.get(" not in text.replace("AirflowVariable.get(", "")
    variables = [v for v in vars(settings).values() if isinstance(v, settings.Variable)]
    return {v.name for v in variables}, {v.name for v in variables if v.default is None}


def test_docs_set_the_secrets_manager_backend_with_both_prefixes():
    options = documented_options()
    assert options.get("secrets.backend") == BACKEND_CLASS
    assert json.loads(options["secrets.backend_kwargs"]) == {
        "connections_prefix": CONNECTIONS_PREFIX.rstrip("/"),
        "variables_prefix": VARIABLES_PREFIX.rstrip("/"),
    }


def test_docs_create_a_secret_for_every_connection_and_required_variable():
    secrets = documented_secrets()
    for conn_id in CONNECTION_IDS:
        assert f"{CONNECTIONS_PREFIX}{conn_id}" in secrets, conn_id
    every, required = variables_read_by_the_code()
    assert {"music_kpis_raw_bucket", "music_kpis_processed_bucket"} <= every
    for name in required:
        assert f"{VARIABLES_PREFIX}{name}" in secrets, name
    table = DOC.read_text()
    for name in every:
        assert f"| `{name}` |" in table, f"docs/mwaa.md does not describe the variable {name}"


@pytest.fixture(scope="module")
def secrets_in_moto(moto_endpoint: str) -> dict[str, str]:
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION, **MOTO_CREDENTIALS)
    secrets = documented_secrets()
    for name, value in secrets.items():
        try:
            client.create_secret(Name=name, SecretString=value)
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=name, SecretString=value)
    return secrets


RESOLVE = """
import json, sys
sys.path.insert(0, sys.argv[1])
names = json.loads(sys.argv[2])
from airflow.sdk import Connection, Variable

out = {"connections": {}, "variables": {}}
for conn_id in names["connections"]:
    try:
        conn = Connection.get(conn_id)
    except Exception as error:
        out["connections"][conn_id] = type(error).__name__
        continue
    out["connections"][conn_id] = {
        "conn_type": conn.conn_type, "host": conn.host, "port": conn.port, "login": conn.login,
        "password": conn.password, "schema": conn.schema, "extra": conn.extra_dejson,
    }
for name in names["variables"]:
    out["variables"][name] = Variable.get(name, default=None)

if names["deep"]:
    from airflow.models import Connection as CoreConnection
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from include.music_kpis.settings import BACKEND

    out["core_warehouse_host"] = CoreConnection.get_connection_from_secrets(names["connections"][0]).host
    out["s3_hook_region"] = S3Hook(aws_conn_id="aws_default").conn_config.region_name
    out["configured_backend"] = BACKEND.read()
    out["reject_threshold_default"] = Variable.get("music_kpis_reject_threshold", default="0.05")
print("RESULT " + json.dumps(out))
"""


def resolve(moto_endpoint: str, tmp_path: Path, *, configured: bool, deep: bool) -> dict:
    """Look connections and variables up in a fresh Airflow process; only the secrets backend points at moto."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_", "AIRFLOW__MUSIC_KPIS__"))
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": MOTO_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": MOTO_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            # The AWS SDK's own per-service endpoint setting: the backend's kwargs stay exactly as documented.
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint,
        }
    )
    if configured:
        options = documented_options()
        # What MWAA does with each configuration option: AIRFLOW__<SECTION>__<KEY> in every process.
        for option, value in options.items():
            section, key = option.split(".")
            env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = value
    names = {
        "connections": list(CONNECTION_IDS),
        "variables": sorted(variables_read_by_the_code()[0]),
        "deep": deep,
    }
    run = subprocess.run(
        [sys.executable, "-c", RESOLVE, str(PROJECT_DIR), json.dumps(names)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_connections_and_variables_resolve_from_secrets_manager(secrets_in_moto, moto_endpoint, tmp_path):
    found = resolve(moto_endpoint, tmp_path, configured=True, deep=True)

    for conn_id in CONNECTION_IDS:
        documented = json.loads(secrets_in_moto[f"{CONNECTIONS_PREFIX}{conn_id}"])
        resolved = found["connections"][conn_id]
        assert isinstance(resolved, dict), f"{conn_id}: {resolved}"
        for field in ("conn_type", "host", "port", "login", "password", "schema"):
            assert resolved[field] == documented.get(field), (conn_id, field)
        assert resolved["extra"] == documented.get("extra", {}), conn_id

    warehouse = found["connections"][WAREHOUSE_CONN_ID]
    assert warehouse["conn_type"] == "redshift" and warehouse["port"] == 5439
    assert found["connections"][REDSHIFT_COPY_CONN_ID]["extra"]["role_arn"].startswith("arn:aws:iam::")
    assert found["connections"][AWS_CONN_ID]["conn_type"] == "aws"

    for name, value in found["variables"].items():
        secret = secrets_in_moto.get(f"{VARIABLES_PREFIX}{name}")
        assert value == secret, name  # None for the optional ones the docs leave out
    assert found["variables"]["music_kpis_raw_bucket"] == "example-music-raw"

    # The scheduler's / API server's lookup, the AWS hooks, and the DAG file's parse-time choice.
    assert found["core_warehouse_host"] == warehouse["host"]
    assert (
        found["s3_hook_region"]
        == json.loads(secrets_in_moto[f"{CONNECTIONS_PREFIX}{AWS_CONN_ID}"])["extra"]["region_name"]
    )
    assert found["configured_backend"] == "redshift"
    assert found["reject_threshold_default"] == "0.05"


def test_without_the_backend_nothing_resolves(secrets_in_moto, moto_endpoint, tmp_path):
    """Control: the values above came from Secrets Manager, not from anywhere else."""
    found = resolve(moto_endpoint, tmp_path, configured=False, deep=False)
    assert set(found["connections"].values()) == {"AirflowNotFoundException"}
    assert set(found["variables"].values()) == {None}
