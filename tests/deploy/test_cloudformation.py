"""deploy/cloudformation/music-kpis.yaml: cfn-lint clean, and the security properties docs/infrastructure.md promises.

Each property is a `problems_*` function that returns what it found wrong. The same functions run on the real
template (they must find nothing) and on deliberately broken copies of it (each must find something), so a check
that can no longer fail fails its own test.

The template is parsed with cfn-lint's decoder, which turns !Ref / !Sub / !GetAtt into {"Ref": ...},
{"Fn::Sub": ...}, {"Fn::GetAtt": [...]} and keeps line numbers. `render` writes intrinsic values back as
CloudFormation substitution strings ("${ProcessedBucket.Arn}/transformed/*"), which is what the checks compare.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cfnlint import api as cfnlint_api
from cfnlint import decode as cfnlint_decode
from cfnlint.config import ManualArgs

from include.music_kpis.exports import export_key, unload_prefix
from include.music_kpis.files import manifest_prefix, quarantine_prefix, transformed_prefix, validated_prefix
from include.music_kpis.kpis import kpi_tables
from include.music_kpis.report_data import report_keys
from include.music_kpis.schemas import DATASETS, load_schema
from include.music_kpis.settings import AWS_CONN_ID, BACKEND, REDSHIFT_COPY_CONN_ID, WAREHOUSE_CONN_ID

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_DIR / "deploy" / "cloudformation" / "music-kpis.yaml"
MWAA_DOC = PROJECT_DIR / "docs" / "mwaa.md"
INFRASTRUCTURE_DOC = PROJECT_DIR / "docs" / "infrastructure.md"

# Regions where every resource type of the stack exists (MWAA is not in all of them, so not lint_all).
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]

AIRFLOW_VERSION = "3.0.6"
SECRETS_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
SECRETS_PREFIXES = {"connections_prefix": "airflow/connections", "variables_prefix": "airflow/variables"}
CONNECTION_IDS = (WAREHOUSE_CONN_ID, AWS_CONN_ID, REDSHIFT_COPY_CONN_ID)
RAW = "music_kpis_raw_bucket"
PROCESSED = "music_kpis_processed_bucket"
VARIABLES = (RAW, PROCESSED)
WAREHOUSE_SECRET = f"{SECRETS_PREFIXES['connections_prefix']}/{WAREHOUSE_CONN_ID}"

# Actions AWS authorizes on "*" only (or, for the AWS-owned KMS key of MWAA's queues, on a key outside the
# account, hence NotResource). Anything else with Resource "*" or NotResource is a finding.
WILDCARD_RESOURCE_ACTIONS = {
    "logs:DescribeLogGroups": "no resource-level permissions",
    "s3:GetAccountPublicAccessBlock": "an account-level setting",
    "cloudwatch:PutMetricData": "metrics are not a resource an MWAA environment can name",
    "kms:Decrypt": "AWS-owned key of MWAA's Celery queues, outside the account (MWAA execution role sample)",
    "kms:DescribeKey": "as kms:Decrypt",
    "kms:GenerateDataKey*": "as kms:Decrypt",
    "kms:Encrypt": "as kms:Decrypt",
}
WILDCARD_COMMENT = '# AWS requires "*" for'
COPY_ROLE_ACTIONS = {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}  # PutObject: UNLOAD of the exports
REDSHIFT_PRINCIPALS = {"redshift.amazonaws.com", "redshift-serverless.amazonaws.com"}

Template = dict[str, Any]


# ---------------------------------------------------------------- reading the template


def load(text: str) -> Template:
    template, matches = cfnlint_decode.decode_str(text)
    assert not matches, [str(m) for m in matches]
    assert template is not None
    return template


@pytest.fixture(scope="module")
def text() -> str:
    return TEMPLATE.read_text()


@pytest.fixture(scope="module")
def template(text: str) -> Template:
    return load(text)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """An intrinsic value as a CloudFormation substitution string: {"Fn::GetAtt": ["B", "Arn"]} -> "${B.Arn}"."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"${{{argument}}}"
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return f"${{{logical_id}.{attribute}}}"
        if function == "Fn::Sub":
            if isinstance(argument, str):
                return argument
            body, variables = argument
            for name, variable in variables.items():
                body = body.replace(f"${{{name}}}", render(variable))
            return body
    return json.dumps(value, sort_keys=True, default=str)


def referenced_id(value: Any) -> str | None:
    """Logical id of !Ref X / !GetAtt X.Arn (rendered as ${X} / ${X.Arn}), else None."""
    match = re.fullmatch(r"\$\{(\w+)(?:\.Arn)?\}", render(value))
    return match.group(1) if match else None


def resources_of(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template.get("Resources", {}).items() if r.get("Type") == type_}


def props(template: Template, logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id].get("Properties", {})


def secret_values(template: Template) -> dict[str, str]:
    """Secret name -> rendered SecretString, for every secret with a literal name."""
    found = {}
    for secret in resources_of(template, "AWS::SecretsManager::Secret").values():
        properties = secret.get("Properties", {})
        if isinstance(properties.get("Name"), str):
            found[properties["Name"]] = render(properties.get("SecretString", ""))
    return found


def secret_json(template: Template, name: str) -> dict[str, Any]:
    return json.loads(secret_values(template)[name])


def bucket_of_variable(template: Template, variable: str) -> str:
    """Logical id of the bucket the Airflow variable's secret names."""
    value = secret_values(template)[f"{SECRETS_PREFIXES['variables_prefix']}/{variable}"]
    logical_id = referenced_id(value) or value
    assert template["Resources"][logical_id]["Type"] == "AWS::S3::Bucket", logical_id
    return logical_id


def copy_role_id(template: Template) -> str:
    """The role named by the role_arn extra of the music_kpis_redshift_copy connection's secret."""
    extra = secret_json(template, f"{SECRETS_PREFIXES['connections_prefix']}/{REDSHIFT_COPY_CONN_ID}")["extra"]
    logical_id = referenced_id(extra["role_arn"])
    assert logical_id and template["Resources"][logical_id]["Type"] == "AWS::IAM::Role", extra
    return logical_id


def mwaa_environment(template: Template) -> dict[str, Any]:
    (environment,) = resources_of(template, "AWS::MWAA::Environment").values()
    return environment.get("Properties", {})


def execution_role_id(template: Template) -> str:
    logical_id = referenced_id(mwaa_environment(template)["ExecutionRoleArn"])
    assert logical_id and template["Resources"][logical_id]["Type"] == "AWS::IAM::Role"
    return logical_id


def role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    """Every permission statement that applies to the role: inline policies and attached policy resources."""
    statements = []
    for policy in props(template, role_id).get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
        for resource in resources_of(template, type_).values():
            properties = resource.get("Properties", {})
            roles = as_list(properties.get("Roles", [])) + as_list(properties.get("RoleName", []))
            if any(referenced_id(role) == role_id for role in roles):
                statements += as_list(properties["PolicyDocument"]["Statement"])
    return statements


def permission_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) of every identity and resource policy (not trust policies)."""
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in as_list(document.get("Statement", [])):
                yield logical_id, statement


def actions_of(statement: dict[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action", []))]


def matches(patterns: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def allows(statements: list[dict[str, Any]], action: str, resource: str, *, s3_prefix: str | None = None) -> bool:
    """Whether an Allow statement grants `action` on `resource` (patterns rendered), honouring s3:prefix."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if not any(fnmatch.fnmatch(action.lower(), a.lower()) for a in actions_of(statement)):
            continue
        if not matches([render(r) for r in as_list(statement.get("Resource", []))], resource):
            continue
        prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        if prefixes is not None and (s3_prefix is None or not matches(as_list(prefixes), s3_prefix)):
            continue
        return True
    return False


# ---------------------------------------------------------------- the checks


def problems_data_bucket(template: Template, variable: str, *, versioned: bool) -> list[str]:
    """The bucket behind the variable: encrypted, public access blocked, TLS only, versioned if asked."""
    logical_id = bucket_of_variable(template, variable)
    properties = props(template, logical_id)
    problems = []
    block = properties.get("PublicAccessBlockConfiguration", {})
    for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        if block.get(setting) not in (True, "true"):
            problems.append(f"{logical_id}: PublicAccessBlockConfiguration.{setting} is not true")
    rules = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    algorithms = [r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
    if not algorithms or not all(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in algorithms):
        problems.append(f"{logical_id}: no default server-side encryption ({algorithms})")
    status = properties.get("VersioningConfiguration", {}).get("Status")
    if versioned and status != "Enabled":
        problems.append(f"{logical_id}: versioning is {status!r}, not Enabled")
    bucket_and_objects = {f"${{{logical_id}.Arn}}", f"${{{logical_id}.Arn}}/*"}
    tls_only = [
        statement
        for policy in resources_of(template, "AWS::S3::BucketPolicy").values()
        if referenced_id(policy["Properties"]["Bucket"]) == logical_id
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        if statement.get("Effect") == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in (False, "false")
        and {render(r) for r in as_list(statement.get("Resource", []))} >= bucket_and_objects
    ]
    if not tls_only:
        problems.append(f"{logical_id}: no bucket policy denies requests without TLS")
    return problems


def problems_copy_role(template: Template) -> list[str]:
    """The COPY role: trusted by Redshift only, reads the processed bucket's transformed/ prefix, and
    writes its exports/unload/ prefix (UNLOAD of the KPI exports), nothing else."""
    role_id = copy_role_id(template)
    processed = bucket_of_variable(template, PROCESSED)
    properties = props(template, role_id)
    problems = []
    if properties.get("ManagedPolicyArns"):
        problems.append(f"{role_id}: has managed policies {properties['ManagedPolicyArns']}")
    for statement in as_list(properties["AssumeRolePolicyDocument"]["Statement"]):
        principals = set(as_list(statement.get("Principal", {}).get("Service", [])))
        if statement.get("Effect") == "Allow" and (not principals or not principals <= REDSHIFT_PRINCIPALS):
            problems.append(f"{role_id}: trusted by {statement.get('Principal')}, not Redshift only")
    namespaces = resources_of(template, "AWS::RedshiftServerless::Namespace").values()
    if not any(role_id in map(referenced_id, n["Properties"].get("IamRoles", [])) for n in namespaces):
        problems.append(f"{role_id}: not associated with the Redshift namespace")
    statements = role_statements(template, role_id)
    if not statements:
        problems.append(f"{role_id}: no permissions")
    for statement in statements:
        sid = statement.get("Sid", "?")
        if statement.get("Effect") != "Allow":
            continue
        extra = set(actions_of(statement)) - COPY_ROLE_ACTIONS
        if extra:
            problems.append(f"{role_id}/{sid}: grants {sorted(extra)} (only {sorted(COPY_ROLE_ACTIONS)} allowed)")
        if "NotResource" in statement or "NotAction" in statement:
            problems.append(f"{role_id}/{sid}: NotResource/NotAction")
        for resource in map(render, as_list(statement.get("Resource", []))):
            if "s3:GetObject" in actions_of(statement) and not resource.startswith(
                f"${{{processed}.Arn}}/transformed/"
            ):
                problems.append(f"{role_id}/{sid}: GetObject on {resource}, outside {processed}/transformed/")
            if "s3:PutObject" in actions_of(statement) and not resource.startswith(
                f"${{{processed}.Arn}}/exports/unload/"
            ):
                problems.append(f"{role_id}/{sid}: PutObject on {resource}, outside {processed}/exports/unload/")
            if "s3:ListBucket" in actions_of(statement):
                if resource != f"${{{processed}.Arn}}":
                    problems.append(f"{role_id}/{sid}: ListBucket on {resource}, not the processed bucket")
                prefixes = as_list(statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix", []))
                if not prefixes or not all(str(p).startswith("transformed/") for p in prefixes):
                    problems.append(f"{role_id}/{sid}: ListBucket not limited to transformed/ ({prefixes})")
    # What the DAG COPYs: each accepted file's transformed prefix, and the batch manifest.
    for key in (f"{transformed_prefix('streams', 'f')}part-00000.parquet", f"{manifest_prefix('b')}files.parquet"):
        if not allows(statements, "s3:GetObject", f"${{{processed}.Arn}}/{key}"):
            problems.append(f"{role_id}: cannot read {key}, which the DAG COPYs")
    for kpi in kpi_tables():  # What UNLOAD writes: <prefix>000.csv
        if not allows(statements, "s3:PutObject", f"${{{processed}.Arn}}/{unload_prefix(kpi.name)}000.csv"):
            problems.append(f"{role_id}: cannot write {unload_prefix(kpi.name)}000.csv, which the DAG UNLOADs")
    return problems


def problems_wildcard_resources(template: Template, text: str) -> list[str]:
    """Resource "*" / NotResource only for allow-listed actions, each statement justified by a comment."""
    lines = text.splitlines()
    problems = []
    for where, statement in permission_statements(template):
        sid = statement.get("Sid", "?")
        if statement.get("Effect") == "Allow":
            broad = [a for a in actions_of(statement) if a == "*" or a.endswith(":*")]
            if broad or "NotAction" in statement:
                problems.append(f"{where}/{sid}: allows {broad or 'NotAction'}")
        resources = [render(r) for r in as_list(statement.get("Resource", []))]
        if "*" not in resources and "NotResource" not in statement:
            continue
        unlisted = [a for a in actions_of(statement) if a not in WILDCARD_RESOURCE_ACTIONS]
        if unlisted:
            problems.append(f"{where}/{sid}: {unlisted} on Resource '*' or NotResource")
        line = getattr(getattr(statement, "start_mark", None), "line", None)
        comment = []
        while line is not None and line > 0 and lines[line - 1].strip().startswith("#"):
            line -= 1
            comment.insert(0, lines[line].strip())
        if not comment or not comment[0].startswith(WILDCARD_COMMENT):
            problems.append(f"{where}/{sid}: wildcard resource without a preceding '{WILDCARD_COMMENT} ...' comment")
    return problems


def problems_mwaa(template: Template) -> list[str]:
    """Airflow 3.0.6, Secrets Manager backend with both prefixes, and an execution role that can read them."""
    environment = mwaa_environment(template)
    problems = []
    if environment.get("AirflowVersion") != AIRFLOW_VERSION:
        problems.append(f"AirflowVersion is {environment.get('AirflowVersion')!r}, not {AIRFLOW_VERSION}")
    options = environment.get("AirflowConfigurationOptions", {})
    if options.get("secrets.backend") != SECRETS_BACKEND:
        problems.append(f"secrets.backend is {options.get('secrets.backend')!r}")
    try:
        kwargs = json.loads(options.get("secrets.backend_kwargs", ""))
    except (TypeError, ValueError):
        kwargs = None
    if kwargs != SECRETS_PREFIXES:
        problems.append(f"secrets.backend_kwargs is {options.get('secrets.backend_kwargs')!r}")
    backend_option = f"music_kpis.{BACKEND.option}"
    if options.get(backend_option) != "redshift":
        problems.append(f"{backend_option} is {options.get(backend_option)!r}, not 'redshift'")
    subnets = environment.get("NetworkConfiguration", {}).get("SubnetIds", [])
    groups = environment.get("NetworkConfiguration", {}).get("SecurityGroupIds", [])
    if len(subnets) != 2:
        problems.append(f"MWAA needs exactly two private subnets, got {subnets}")
    if not groups or not all(referenced_id(g) in template["Resources"] for g in groups):
        problems.append(f"MWAA security groups {groups} are not created by the template")
    statements = role_statements(template, execution_role_id(template))
    secret_arn = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
    for name in secret_values(template):
        if not allows(statements, "secretsmanager:GetSecretValue", f"{secret_arn}{name}-AbCdEf"):
            problems.append(f"execution role cannot read the secret {name}")
    for statement in statements:
        if "secretsmanager:GetSecretValue" in actions_of(statement) and statement.get("Effect") == "Allow":
            for resource in map(render, as_list(statement.get("Resource", []))):
                if not any(resource == f"{secret_arn}{prefix}/*" for prefix in SECRETS_PREFIXES.values()):
                    problems.append(f"GetSecretValue on {resource}, outside airflow/connections|variables")
    return problems


def problems_dag_permissions(template: Template) -> list[str]:
    """The execution role lets the DAG do what it does: read raw, write processed, log in to Redshift."""
    statements = role_statements(template, execution_role_id(template))
    raw = f"${{{bucket_of_variable(template, RAW)}.Arn}}"
    processed = f"${{{bucket_of_variable(template, PROCESSED)}.Arn}}"
    needed = []
    for dataset in DATASETS:
        prefix = load_schema(dataset).raw_prefix
        needed += [("s3:ListBucket", raw, prefix), ("s3:GetObject", f"{raw}/{prefix}x.csv", None)]
        for written in (transformed_prefix, validated_prefix, quarantine_prefix):
            key = written(dataset, "f")
            needed.append(("s3:ListBucket", processed, key))
            needed += [(a, f"{processed}/{key}part-00000.parquet", None) for a in ("s3:PutObject", "s3:DeleteObject")]
    needed += [("s3:PutObject", f"{processed}/{manifest_prefix('b')}files.parquet", None)]
    for kpi in kpi_tables():  # export_kpis moves the unloaded file to its stable key
        unloaded = f"{processed}/{unload_prefix(kpi.name)}000.csv"
        needed += [("s3:GetObject", unloaded, None), ("s3:DeleteObject", unloaded, None)]
        needed += [("s3:PutObject", f"{processed}/{export_key(kpi.name)}", None)]
    needed += [("s3:PutObject", f"{processed}/{key}", None) for key in report_keys("manual__x")]  # publish_report
    problems = [
        f"execution role cannot {action} {resource} (prefix {prefix})"
        for action, resource, prefix in needed
        if not allows(statements, action, resource, s3_prefix=prefix)
    ]
    for statement in statements:
        if statement.get("Effect") == "Allow" and any(a.startswith("s3:Put") for a in actions_of(statement)):
            for resource in map(render, as_list(statement.get("Resource", []))):
                if resource.startswith(raw):
                    problems.append(f"execution role may write the raw bucket ({resource})")
    extra = secret_json(template, WAREHOUSE_SECRET).get("extra", {})
    if extra.get("iam"):
        workgroup = referenced_id(extra.get("serverless_work_group", ""))
        if not extra.get("is_serverless") or not workgroup:
            problems.append(f"warehouse connection uses IAM without a serverless workgroup: {extra}")
        elif not allows(statements, "redshift-serverless:GetCredentials", f"${{{workgroup}.Workgroup.WorkgroupArn}}"):
            problems.append(f"execution role cannot get credentials for the workgroup {workgroup}")
    return problems


def problems_alerts(template: Template) -> list[str]:
    """An SNS topic the DAG reads from music_kpis.alerts_topic_arn; the execution role may publish to it only.

    Least privilege ("Amazon SNS API permissions: Actions and resources reference", Amazon SNS
    Developer Guide): sns:Publish, on the topic's ARN, and no other SNS action.
    """
    topics = resources_of(template, "AWS::SNS::Topic")
    option = mwaa_environment(template).get("AirflowConfigurationOptions", {}).get("music_kpis.alerts_topic_arn")
    topic = referenced_id(option) if option is not None else None
    if topic not in topics:
        return [f"music_kpis.alerts_topic_arn is not a topic of the stack: {option!r}"]
    statements = role_statements(template, execution_role_id(template))
    problems = (
        [] if allows(statements, "sns:Publish", f"${{{topic}}}") else [f"execution role cannot publish to {topic}"]
    )
    for statement in statements:
        sns_actions = [a for a in actions_of(statement) if a.lower().startswith("sns:") or a == "*"]
        if statement.get("Effect") != "Allow" or not sns_actions:
            continue
        if [a for a in sns_actions if a.lower() != "sns:publish"]:
            problems.append(f"execution role has SNS actions beyond sns:Publish: {sns_actions}")
        resources = [render(r) for r in as_list(statement.get("Resource", []))]
        if resources != [f"${{{topic}}}"]:
            problems.append(f"execution role may publish to {resources}, not only the alerts topic")
    return problems


def problems_airflow_secrets(template: Template) -> list[str]:
    """A secret for every connection and variable the DAG reads; connection secrets are JSON connections."""
    names = secret_values(template)
    wanted = [f"{SECRETS_PREFIXES['connections_prefix']}/{c}" for c in CONNECTION_IDS]
    wanted += [f"{SECRETS_PREFIXES['variables_prefix']}/{v}" for v in VARIABLES]
    problems = [f"no secret {name}" for name in wanted if name not in names]
    for conn_id in CONNECTION_IDS:
        name = f"{SECRETS_PREFIXES['connections_prefix']}/{conn_id}"
        if name in names:
            try:
                json.loads(names[name])
            except ValueError as error:
                problems.append(f"{name} is not a JSON connection: {error}")
    return problems


def problems_passwords(template: Template) -> list[str]:
    """No password in the template: not in a property, not in a parameter, not in a secret's literal value."""
    problems = []
    for name in template.get("Parameters", {}):
        if re.search("password|secret", name, re.IGNORECASE):
            problems.append(f"parameter {name}")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{path}.{key}"
                if re.search("password", str(key), re.IGNORECASE) and key != "ManageAdminPassword":
                    dynamic = isinstance(value, str) and value.startswith("{{resolve:secretsmanager:")
                    if not dynamic:
                        problems.append(f"{here} is set in the template")
                walk(value, here)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}[{index}]")

    walk(template.get("Resources", {}), "Resources")
    for name, value in secret_values(template).items():
        if re.search(r"password", value, re.IGNORECASE):
            problems.append(f"secret {name} has a password in its literal value")
    for logical_id, namespace in resources_of(template, "AWS::RedshiftServerless::Namespace").items():
        if namespace["Properties"].get("ManageAdminPassword") not in (True, "true"):
            problems.append(f"{logical_id}: ManageAdminPassword is not true (admin password must be generated)")
    return problems


# ---------------------------------------------------------------- tests on the real template


def test_cfn_lint_reports_nothing():
    found = cfnlint_api.lint_file(TEMPLATE, ManualArgs(regions=LINT_REGIONS, include_checks=["I"]))
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in found] == []


def test_template_deploys_without_an_upload_bucket():
    # `aws cloudformation deploy` needs --s3-bucket for templates over 51,200 bytes.
    assert TEMPLATE.stat().st_size <= 51_200


def test_every_output_is_documented(template):
    documented = INFRASTRUCTURE_DOC.read_text()
    assert [name for name in template["Outputs"] if f"`{name}`" not in documented] == []


def test_raw_bucket_is_encrypted_private_tls_only_and_versioned(template):
    assert problems_data_bucket(template, RAW, versioned=True) == []


def test_processed_bucket_is_encrypted_private_and_tls_only(template):
    assert problems_data_bucket(template, PROCESSED, versioned=False) == []


def test_mwaa_bucket_is_versioned_and_private(template):
    properties = props(template, referenced_id(mwaa_environment(template)["SourceBucketArn"]))
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}


def test_copy_role_only_reads_transformed_in_the_processed_bucket(template):
    assert problems_copy_role(template) == []


def test_wildcard_resources_are_allow_listed_and_justified(template, text):
    assert problems_wildcard_resources(template, text) == []


def test_mwaa_runs_airflow_306_with_the_secrets_manager_backend(template):
    assert problems_mwaa(template) == []


def test_mwaa_options_are_the_ones_docs_mwaa_md_documents(template):
    documented = dict(re.findall(r"^((?:secrets|music_kpis)\.\w+) = (.+)$", MWAA_DOC.read_text(), re.MULTILINE))
    options = mwaa_environment(template)["AirflowConfigurationOptions"]
    assert set(options) == set(documented)
    assert options["secrets.backend"] == documented["secrets.backend"]
    assert json.loads(options["secrets.backend_kwargs"]) == json.loads(documented["secrets.backend_kwargs"])
    assert options["music_kpis.backend"] == documented["music_kpis.backend"] == "redshift"
    assert options["music_kpis.metadata_source"] == documented["music_kpis.metadata_source"]


def test_execution_role_covers_what_the_dag_does(template):
    assert problems_dag_permissions(template) == []


def test_alerts_topic_and_only_its_publish_permission(template):
    assert problems_alerts(template) == []


def test_every_connection_and_variable_has_a_secret(template):
    assert problems_airflow_secrets(template) == []


def test_no_password_in_the_template(template):
    assert problems_passwords(template) == []


def test_warehouse_secret_drives_the_redshift_hooks_serverless_iam_login(template, monkeypatch):
    """The generated connection, as Airflow reads it, makes RedshiftSQLHook fetch IAM credentials for the workgroup."""
    import redshift_connector
    from airflow.models.connection import Connection
    from airflow.providers.amazon.aws.hooks import redshift_sql

    defaults = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    workgroup, database = defaults["RedshiftWorkgroupName"], defaults["RedshiftDatabaseName"]
    host = f"{workgroup}.123456789012.eu-west-1.redshift-serverless.amazonaws.com"
    value = secret_values(template)[WAREHOUSE_SECRET]
    for placeholder, actual in {
        "${RedshiftWorkgroup.Workgroup.Endpoint.Address}": host,
        "${RedshiftWorkgroup}": workgroup,
        "${AWS::Region}": "eu-west-1",
        **{f"${{{name}}}": default for name, default in defaults.items()},
    }.items():
        value = value.replace(placeholder, actual)
    assert "${" not in value, value

    client = mock.Mock()
    client.get_credentials.return_value = {"dbUser": "IAMR:music-kpis-mwaa-execution", "dbPassword": "token"}
    monkeypatch.setattr(redshift_sql.AwsBaseHook, "conn", client)
    connect = mock.Mock()
    monkeypatch.setattr(redshift_sql.redshift_connector, "connect", connect)
    hook = redshift_sql.RedshiftSQLHook(redshift_conn_id=WAREHOUSE_CONN_ID)
    hook.__dict__["conn"] = Connection.from_json(value, conn_id=WAREHOUSE_CONN_ID)

    hook.get_conn()

    client.get_credentials.assert_called_once_with(dbName=database, workgroupName=workgroup, durationSeconds=3600)
    kwargs = connect.call_args.kwargs
    assert kwargs["user"] == "IAMR:music-kpis-mwaa-execution"
    assert (kwargs["host"], kwargs["port"], kwargs["database"]) == (host, 5439, database)
    assert kwargs["is_serverless"] is True and kwargs["serverless_work_group"] == workgroup
    inspect.signature(redshift_connector.connect).bind(**kwargs)  # every extra is a real driver argument


# ---------------------------------------------------------------- the checks catch what they are for


def _statement(template: Template, role: str, sid: str) -> dict[str, Any]:
    for statement in role_statements(template, role):
        if statement.get("Sid") == sid:
            return statement
    raise KeyError(sid)


def _set_secret(template: Template, name: str, value: str) -> None:
    for secret in resources_of(template, "AWS::SecretsManager::Secret").values():
        if secret["Properties"].get("Name") == name:
            secret["Properties"]["SecretString"] = value


def _drop_statement(template: Template, role: str, sid: str) -> None:
    for policy in props(template, role)["Policies"]:
        statements = policy["PolicyDocument"]["Statement"]
        statements[:] = [s for s in statements if s.get("Sid") != sid]


MUTATIONS: dict[str, tuple[Callable[[Template], None], Callable[[Template], list[str]]]] = {
    "raw bucket public access not blocked": (
        lambda t: props(t, bucket_of_variable(t, RAW)).pop("PublicAccessBlockConfiguration"),
        lambda t: problems_data_bucket(t, RAW, versioned=True),
    ),
    "raw bucket versioning suspended": (
        lambda t: props(t, bucket_of_variable(t, RAW)).update(VersioningConfiguration={"Status": "Suspended"}),
        lambda t: problems_data_bucket(t, RAW, versioned=True),
    ),
    "processed bucket unencrypted": (
        lambda t: props(t, bucket_of_variable(t, PROCESSED)).pop("BucketEncryption"),
        lambda t: problems_data_bucket(t, PROCESSED, versioned=False),
    ),
    "processed bucket accepts plain HTTP": (
        lambda t: props(t, "ProcessedBucketPolicy")["PolicyDocument"]["Statement"].pop(0),
        lambda t: problems_data_bucket(t, PROCESSED, versioned=False),
    ),
    "COPY role may write": (
        lambda t: _statement(t, copy_role_id(t), "ReadTransformedObjects").update(
            Action=["s3:GetObject", "s3:PutObject"]
        ),
        problems_copy_role,
    ),
    "COPY role reads the raw bucket": (
        lambda t: _statement(t, copy_role_id(t), "ReadTransformedObjects").update(
            Resource={"Fn::Sub": "${RawBucket.Arn}/*"}
        ),
        problems_copy_role,
    ),
    "COPY role reads all of the processed bucket": (
        lambda t: _statement(t, copy_role_id(t), "ReadTransformedObjects").update(
            Resource={"Fn::Sub": "${ProcessedBucket.Arn}/*"}
        ),
        problems_copy_role,
    ),
    "COPY role lists the whole processed bucket": (
        lambda t: _statement(t, copy_role_id(t), "ListTransformedPrefix").pop("Condition"),
        problems_copy_role,
    ),
    "COPY role trusted by EC2": (
        lambda t: props(t, copy_role_id(t))["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].update(
            Service=["ec2.amazonaws.com"]
        ),
        problems_copy_role,
    ),
    "secrets readable on Resource *": (
        lambda t: _statement(t, execution_role_id(t), "ReadAirflowSecrets").update(Resource="*"),
        lambda t: problems_wildcard_resources(t, TEMPLATE.read_text()),
    ),
    "new wildcard statement": (
        lambda t: props(t, execution_role_id(t))["Policies"][1]["PolicyDocument"]["Statement"].append(
            {"Sid": "Everything", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}
        ),
        lambda t: problems_wildcard_resources(t, TEMPLATE.read_text()),
    ),
    "Airflow 2": (
        lambda t: mwaa_environment(t).update(AirflowVersion="2.10.3"),
        problems_mwaa,
    ),
    "no variables prefix": (
        lambda t: mwaa_environment(t)["AirflowConfigurationOptions"].update(
            {"secrets.backend_kwargs": '{"connections_prefix": "airflow/connections"}'}
        ),
        problems_mwaa,
    ),
    "default secrets backend": (
        lambda t: mwaa_environment(t)["AirflowConfigurationOptions"].pop("secrets.backend"),
        problems_mwaa,
    ),
    "execution role reads every secret": (
        lambda t: _statement(t, execution_role_id(t), "ReadAirflowSecrets").update(
            Resource={"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}
        ),
        problems_mwaa,
    ),
    "execution role cannot delete stale Parquet": (
        lambda t: _statement(t, execution_role_id(t), "ReadWriteProcessedObjects").update(
            Action=["s3:GetObject", "s3:PutObject"]
        ),
        problems_dag_permissions,
    ),
    "execution role cannot log in to Redshift": (
        lambda t: _drop_statement(t, execution_role_id(t), "RedshiftTemporaryCredentials"),
        problems_dag_permissions,
    ),
    "alerts published to every topic": (
        lambda t: _statement(t, execution_role_id(t), "PublishAlerts").update(Resource="*"),
        problems_alerts,
    ),
    "alerts topic managed by the DAG": (
        lambda t: _statement(t, execution_role_id(t), "PublishAlerts").update(Action=["sns:Publish", "sns:*"]),
        problems_alerts,
    ),
    "no permission to publish alerts": (
        lambda t: _drop_statement(t, execution_role_id(t), "PublishAlerts"),
        problems_alerts,
    ),
    "alerts topic not configured": (
        lambda t: mwaa_environment(t)["AirflowConfigurationOptions"].pop("music_kpis.alerts_topic_arn"),
        problems_alerts,
    ),
    "missing variable secret": (
        lambda t: t["Resources"].pop("ProcessedBucketVariableSecret"),
        problems_airflow_secrets,
    ),
    "backend not set on MWAA": (
        lambda t: mwaa_environment(t)["AirflowConfigurationOptions"].pop("music_kpis.backend"),
        problems_mwaa,
    ),
    "literal admin password": (
        lambda t: props(t, "RedshiftNamespace").update(AdminUserPassword="Sup3rSecretPassw0rd"),
        problems_passwords,
    ),
    "admin password not managed": (
        lambda t: props(t, "RedshiftNamespace").pop("ManageAdminPassword"),
        problems_passwords,
    ),
    "password parameter": (
        lambda t: t["Parameters"].update(RedshiftAdminPassword={"Type": "String", "NoEcho": True}),
        problems_passwords,
    ),
    "password in the connection secret": (
        lambda t: _set_secret(t, WAREHOUSE_SECRET, '{"conn_type": "redshift", "login": "a", "password": "b"}'),
        problems_passwords,
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_each_check_reports_a_broken_template(template, mutation):
    mutate, check = MUTATIONS[mutation]
    assert check(template) == []
    broken = copy.deepcopy(template)
    mutate(broken)
    assert check(broken) != []


def test_wildcard_check_reports_a_missing_justification(template, text):
    stripped = text.replace(WILDCARD_COMMENT, "# wildcard", 1)
    assert len(problems_wildcard_resources(load(stripped), stripped)) == 1


def test_cfn_lint_reports_a_broken_template(text):
    broken = text.replace("FromPort: 5439", "FromPort: not-a-port", 1)
    assert broken != text
    assert cfnlint_api.lint(broken, regions=LINT_REGIONS) != []
