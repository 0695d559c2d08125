"""Deploy dags/ and include/ to an Amazon MWAA environment.

    python -m deploy.mwaa_deploy --environment NAME [--bucket B] [--region R] [--dry-run]

1. Reads the environment (`get_environment`): its source bucket, DAG folder,
   requirements and startup-script paths, and the object versions it runs.
2. Uploads `dags/*.py` to the DAG folder and `include/` (Python, SQL, YAML) to
   `<DAG folder>/include/`: MWAA syncs only the DAG folder to its components and
   puts it on sys.path, so `import include.music_kpis` resolves there. Uploads
   the committed `dags/.airflowignore`, which keeps the DAG processor out of
   `include/`, and deletes
   objects under `<DAG folder>/include/` that no longer exist here.
3. Uploads `deploy/mwaa/requirements.txt` (and `deploy/mwaa/startup.sh`, if the
   project has one) when it differs from the version the environment runs.
4. Only then calls `update_environment` with the new object versions. DAG files
   need no update (MWAA syncs the DAG folder by itself); an update restarts
   every Airflow component and takes 10 to 30 minutes.

When the environment does not exist yet, `--bucket` uploads to that bucket with
MWAA's default layout and prints the object versions to create it with.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

PROJECT_DIR = Path(__file__).resolve().parents[1]
REQUIREMENTS_FILE = Path("deploy/mwaa/requirements.txt")
STARTUP_SCRIPT = Path("deploy/mwaa/startup.sh")
INCLUDE_SUFFIXES = frozenset({".py", ".sql", ".yaml"})
# The DAG processor parses DAG files only; include/ is imported by them.
AIRFLOWIGNORE_ENTRY = "include/"
DEFAULT_DAG_FOLDER = "dags"
DEFAULT_REQUIREMENTS_KEY = "requirements.txt"
DEFAULT_STARTUP_KEY = "startup.sh"
# MWAA accepts update_environment in these states only.
UPDATABLE_STATUSES = ("AVAILABLE", "UPDATE_FAILED")

Log = Callable[[str], None]


class DeployError(RuntimeError):
    """The deployment cannot go on; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where an MWAA environment reads its code from, and what it runs now."""

    environment: str
    bucket: str
    dag_folder: str
    requirements_key: str
    startup_key: str
    exists: bool = True
    status: str | None = None
    requirements_version: str | None = None
    startup_version: str | None = None


@dataclass(frozen=True)
class Upload:
    key: str
    body: bytes
    source: str


@dataclass
class Result:
    target: Target
    code: list[Upload]
    environment_files: list[Upload]
    stale: list[str]
    versions: dict[str, str] = field(default_factory=dict)
    update: dict[str, str] | None = None


def bucket_from_arn(arn: str) -> str:
    """arn:aws:s3:::name -> name."""
    prefix = "arn:aws:s3:::"
    if not arn.startswith(prefix) or len(arn) == len(prefix):
        raise DeployError(f"not an S3 bucket ARN: {arn!r}")
    return arn[len(prefix) :]


def resolve_target(mwaa: BaseClient, environment: str, bucket: str | None = None) -> Target:
    """The environment's bucket and paths; with `bucket`, a not-yet-created environment gets the defaults."""
    try:
        env = mwaa.get_environment(Name=environment)["Environment"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException" or not bucket:
            raise
        return Target(environment, bucket, DEFAULT_DAG_FOLDER, DEFAULT_REQUIREMENTS_KEY, DEFAULT_STARTUP_KEY, False)
    source = bucket_from_arn(env["SourceBucketArn"])
    if bucket and bucket != source:
        raise DeployError(f"environment {environment} reads its code from s3://{source}, not s3://{bucket}")
    return Target(
        environment=environment,
        bucket=source,
        dag_folder=env["DagS3Path"].strip("/"),
        requirements_key=env.get("RequirementsS3Path") or DEFAULT_REQUIREMENTS_KEY,
        startup_key=env.get("StartupScriptS3Path") or DEFAULT_STARTUP_KEY,
        status=env.get("Status"),
        requirements_version=env.get("RequirementsS3ObjectVersion"),
        startup_version=env.get("StartupScriptS3ObjectVersion"),
    )


def airflowignore(project_dir: Path) -> bytes:
    """dags/.airflowignore, committed; it must keep the DAG processor out of include/."""
    text = (project_dir / "dags" / ".airflowignore").read_text()
    if AIRFLOWIGNORE_ENTRY not in (line.strip() for line in text.splitlines()):
        raise DeployError(f"dags/.airflowignore must list {AIRFLOWIGNORE_ENTRY!r}: the DAG processor would parse it")
    return text.encode()


def _include_files(project_dir: Path) -> list[Path]:
    include = project_dir / "include"
    return [
        path
        for path in sorted(include.rglob("*"))
        if path.is_file()
        and path.suffix in INCLUDE_SUFFIXES
        and not any(part == "__pycache__" or part.startswith(".") for part in path.relative_to(include).parts)
    ]


def code_uploads(project_dir: Path, dag_folder: str) -> list[Upload]:
    """dags/*.py, include/ and the .airflowignore, keyed under the DAG folder."""
    dag_files = sorted((project_dir / "dags").glob("*.py"))
    if not dag_files:
        raise DeployError(f"no DAG files in {project_dir / 'dags'}")
    uploads = [Upload(f"{dag_folder}/{path.name}", path.read_bytes(), f"dags/{path.name}") for path in dag_files]
    for path in _include_files(project_dir):
        local = path.relative_to(project_dir).as_posix()
        uploads.append(Upload(f"{dag_folder}/{local}", path.read_bytes(), local))
    uploads.append(Upload(f"{dag_folder}/.airflowignore", airflowignore(project_dir), "dags/.airflowignore"))
    return uploads


def _object_body(s3: BaseClient, bucket: str, key: str, version: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    except ClientError:
        return None


def environment_file_uploads(s3: BaseClient, project_dir: Path, target: Target) -> list[Upload]:
    """requirements.txt (and startup.sh, if the project has one) that differ from what the environment runs."""
    changed = []
    for local, key, running in (
        (REQUIREMENTS_FILE, target.requirements_key, target.requirements_version),
        (STARTUP_SCRIPT, target.startup_key, target.startup_version),
    ):
        path = project_dir / local
        if not path.is_file():
            continue
        body = path.read_bytes()
        if running and _object_body(s3, target.bucket, key, running) == body:
            continue
        changed.append(Upload(key, body, local.as_posix()))
    return changed


def stale_keys(s3: BaseClient, bucket: str, prefix: str, keep: set[str]) -> list[str]:
    """Objects under prefix that are not in keep (files deleted or renamed here)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []) if obj["Key"] not in keep)


def ensure_versioned(s3: BaseClient, bucket: str) -> None:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        raise DeployError(f"s3://{bucket} must have versioning enabled for MWAA (it is {status or 'off'})")


def put(s3: BaseClient, bucket: str, upload: Upload) -> str:
    """Upload one object; its S3 version id."""
    version = s3.put_object(Bucket=bucket, Key=upload.key, Body=upload.body).get("VersionId")
    if not version or version == "null":
        raise DeployError(f"s3://{bucket}/{upload.key} got no version id: is bucket versioning enabled?")
    return version


def delete(s3: BaseClient, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
        if response.get("Errors"):
            raise DeployError(f"could not delete from s3://{bucket}: {response['Errors']}")


def update_request(target: Target, versions: dict[str, str]) -> dict[str, str]:
    """update_environment parameters: the requirements version always, the startup script if uploaded."""
    request = {"Name": target.environment}
    requirements_version = versions.get(target.requirements_key) or target.requirements_version
    if requirements_version:
        request["RequirementsS3Path"] = target.requirements_key
        request["RequirementsS3ObjectVersion"] = requirements_version
    if target.startup_key in versions:
        request["StartupScriptS3Path"] = target.startup_key
        request["StartupScriptS3ObjectVersion"] = versions[target.startup_key]
    return request


def report(result: Result, dry_run: bool, log: Log) -> None:
    target = result.target
    state = target.status if target.exists else "not created yet"
    log(f"environment {target.environment} ({state}): s3://{target.bucket}/{target.dag_folder}/")
    verb = "would upload" if dry_run else "uploaded"
    log(f"{verb} {len(result.code)} code file(s) to s3://{target.bucket}/{target.dag_folder}/")
    for upload in result.environment_files:
        version = f" (version {result.versions[upload.key]})" if upload.key in result.versions else ""
        log(f"{verb} {upload.source} -> s3://{target.bucket}/{upload.key}{version}")
    if not result.environment_files:
        log(f"{REQUIREMENTS_FILE} unchanged: the environment runs it already")
    for key in result.stale:
        log(f"{'would delete' if dry_run else 'deleted'} s3://{target.bucket}/{key}")
    if result.update:
        log(f"update_environment {result.update} started: 10 to 30 minutes until AVAILABLE")
    elif not target.exists and not dry_run:
        log(
            f"create the environment with SourceBucketArn arn:aws:s3:::{target.bucket}, "
            f"DagS3Path {target.dag_folder}, RequirementsS3Path {target.requirements_key}, "
            f"RequirementsS3ObjectVersion {result.versions.get(target.requirements_key)}"
        )


def deploy(
    mwaa: BaseClient,
    s3: BaseClient,
    environment: str,
    *,
    project_dir: Path = PROJECT_DIR,
    bucket: str | None = None,
    dry_run: bool = False,
    log: Log = print,
) -> Result:
    """Upload the project to the environment's bucket and update the environment if its files changed."""
    if not environment:
        raise DeployError("an environment name is required")
    target = resolve_target(mwaa, environment, bucket)
    ensure_versioned(s3, target.bucket)
    code = code_uploads(project_dir, target.dag_folder)
    result = Result(
        target=target,
        code=code,
        environment_files=environment_file_uploads(s3, project_dir, target),
        stale=stale_keys(s3, target.bucket, f"{target.dag_folder}/include/", {upload.key for upload in code}),
    )
    needs_update = target.exists and bool(result.environment_files)
    if needs_update and target.status not in UPDATABLE_STATUSES:
        raise DeployError(
            f"environment {environment} is {target.status}; update_environment needs one of {UPDATABLE_STATUSES}. "
            "Nothing was uploaded; run again when it is AVAILABLE."
        )
    if not dry_run:
        result.versions = {upload.key: put(s3, target.bucket, upload) for upload in [*code, *result.environment_files]}
        delete(s3, target.bucket, result.stale)
        if needs_update:
            result.update = update_request(target, result.versions)
            mwaa.update_environment(**result.update)
    report(result, dry_run, log)
    return result


def clients(region: str | None) -> tuple[BaseClient, BaseClient]:
    """(mwaa, s3) clients from the default credential chain."""
    session = boto3.Session(region_name=region)
    return session.client("mwaa"), session.client("s3")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.mwaa_deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--environment", required=True, help="MWAA environment name")
    parser.add_argument(
        "--bucket",
        help="the environment's source bucket: a guard when it exists, the upload target when it does not yet",
    )
    parser.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        mwaa, s3 = clients(args.region)
        deploy(mwaa, s3, args.environment, bucket=args.bucket, dry_run=args.dry_run)
    except (DeployError, ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
