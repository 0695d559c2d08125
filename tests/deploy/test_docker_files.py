"""The Docker files users run: docker-compose.yaml, Dockerfile, .env.example,
.dockerignore and the helper scripts under docker/.

No Docker engine is needed: docker-compose.yaml is interpolated from
.env.example the way `docker compose` does it, then validated against the
Compose Specification's JSON schema and checked for the properties the local
platform depends on. The scripts under docker/ run against stub `mc`/`airflow`
commands.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# The Compose Specification's JSON schema (draft-07; compose-spec project, Apache
# License 2.0, as of June 2026), kept beside this test so a clone validates on
# its own; COMPOSE_SPEC_SCHEMA points at another copy (a newer specification).
SCHEMA_FILE = Path(os.environ.get("COMPOSE_SPEC_SCHEMA", Path(__file__).parent / "compose-spec.json")).resolve()

AIRFLOW_HOME = "/usr/local/airflow"
AIRFLOW_LONG_RUNNING = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
AIRFLOW_SERVICES = AIRFLOW_LONG_RUNNING | {"airflow-init"}
LONG_RUNNING = AIRFLOW_LONG_RUNNING | {"airflow-db", "warehouse", "source-db", "minio"}
ONE_SHOT = {"airflow-init", "minio-init", "load-sample-data", "seed-source-db"}
AIRFLOW_COMMANDS = {
    "airflow-apiserver": ["airflow", "api-server"],
    "airflow-scheduler": ["airflow", "scheduler"],
    "airflow-dag-processor": ["airflow", "dag-processor"],
    "airflow-triggerer": ["airflow", "triggerer"],
}
# Names of settings that hold secrets; *_FILE settings hold paths.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$", re.IGNORECASE)
OPTIONAL_SECRETS = {"AIRFLOW_FERNET_KEY"}  # may be empty: Airflow then stores connections unencrypted


# --- compose interpolation ------------------------------------------------------


class InterpolationError(ValueError):
    pass


def read_dotenv(path: Path) -> dict[str, str]:
    """The subset of compose's .env syntax that .env.example may use."""
    values = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path.name}:{number}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise InterpolationError(f"unclosed ${{ in {text!r}")


def interpolate(text: str, env: dict[str, str], unset: set[str] | None = None) -> str:
    """Compose-file interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, ${VAR+a}."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 1)
            out.append(_substitute(text[i + 2 : end], env, unset))
            i = end + 1
        elif match := re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i + 1 :]):
            out.append(_substitute(match.group(), env, unset))
            i += 1 + match.end()
        else:
            raise InterpolationError(f"invalid $ in {text!r}: write $$ for a literal $")
    return "".join(out)


def _substitute(expression: str, env: dict[str, str], unset: set[str] | None) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", expression, re.DOTALL)
    if not match:
        raise InterpolationError(f"invalid interpolation ${{{expression}}}")
    name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
    value = env.get(name)
    is_set = value is not None
    is_nonempty = bool(value)
    present = is_nonempty if operator and operator.startswith(":") else is_set
    if operator in (":-", "-"):
        return value if present else interpolate(argument, env, unset)
    if operator in (":?", "?"):
        if not present:
            raise InterpolationError(f"required variable {name} is missing a value: {argument}")
        return value
    if operator in (":+", "+"):
        return interpolate(argument, env, unset) if present else ""
    if not is_set and unset is not None:
        unset.add(name)
    return value or ""


def interpolate_tree(node: Any, env: dict[str, str], unset: set[str] | None = None) -> Any:
    """Interpolate every string value (not keys), as compose does before validating."""
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, unset) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env, unset) for value in node]
    if isinstance(node, str):
        return interpolate(node, env, unset)
    return node


def variable_references(text: str) -> list[tuple[str, str | None, str]]:
    """(name, operator, argument) of every ${...} in a compose file, $$ escapes excluded."""
    refs, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 1)
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", text[i + 2 : end], re.DOTALL)
            assert match, f"invalid interpolation {text[i : end + 1]!r}"
            refs.append((match.group(1), match.group(2), match.group(3) or ""))
            i = end + 1
        else:
            i += 1
    return refs


def test_interpolation_follows_compose_rules():
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("a$$b ${SET} $SET", env) == "a$b v v"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-${SET}}", env) == "d  d v"
    assert interpolate("${SET:+alt}${EMPTY:+alt}${EMPTY+alt}", env) == "altalt"
    assert interpolate('$${HOSTNAME} "$${X}"', env) == '${HOSTNAME} "${X}"'
    with pytest.raises(InterpolationError, match="EMPTY"):
        interpolate("${EMPTY:?set it}", env)
    with pytest.raises(InterpolationError, match="UNSET"):
        interpolate("${UNSET?set it}", env)
    unset: set[str] = set()
    assert interpolate("x${UNSET}y", env, unset) == "xy" and unset == {"UNSET"}


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_dotenv(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raw_compose(compose_text) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def compose(raw_compose, env_example) -> dict[str, Any]:
    """docker-compose.yaml as `docker compose config` would see it with .env = .env.example."""
    return interpolate_tree(copy.deepcopy(raw_compose), env_example)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume; short syntax only is used here."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume.get("source", ""), volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            mounts.append((source, target))
    return mounts


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def command_list(service: dict[str, Any], key: str = "command") -> list[str]:
    value = service.get(key) or []
    return value.split() if isinstance(value, str) else list(value)


# --- compose file: structure ---------------------------------------------------------


def test_compose_file_matches_the_compose_specification(compose):
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_every_setting_comes_from_env_example_or_a_default(compose_text, raw_compose, env_example):
    refs = variable_references(compose_text)
    names = {name for name, _, _ in refs}
    bare = {name for name, operator, _ in refs if operator is None and name not in env_example}
    assert not bare, f"referenced without a default and missing from .env.example: {sorted(bare)}"
    required = {name for name, operator, _ in refs if operator in (":?", "?")}
    missing = {name for name in required if not env_example.get(name)}
    assert not missing, f"required (${{VAR:?}}) but empty or absent in .env.example: {sorted(missing)}"
    unused = set(env_example) - names
    assert not unused, f".env.example settings docker-compose.yaml never reads: {sorted(unused)}"
    unset: set[str] = set()
    interpolate_tree(copy.deepcopy(raw_compose), env_example, unset)
    assert not unset


def test_compose_fails_fast_without_env(raw_compose):
    """No .env: compose must refuse to start rather than run with empty passwords."""
    with pytest.raises(InterpolationError, match="required variable"):
        interpolate_tree(copy.deepcopy(raw_compose), {})


def test_expected_services(services):
    assert set(services) == LONG_RUNNING | ONE_SHOT


def test_long_running_services_have_healthchecks_and_restart(services):
    for name in LONG_RUNNING:
        service = services[name]
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name}: no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: {test}"
        assert service.get("restart") in ("always", "unless-stopped"), f"{name}: restart {service.get('restart')}"


def test_one_shot_services_run_once(services):
    for name in ONE_SHOT:
        service = services[name]
        assert service.get("restart", "no") == "no", f"{name}: a one-shot must not restart"
        assert "healthcheck" not in service, f"{name}: one-shots are waited on with service_completed_successfully"


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions (long syntax)"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {dependency}: {spec}"

    def wait_for(name: str) -> set[str]:
        return set(services[name].get("depends_on", {}))

    assert {"airflow-db"} <= wait_for("airflow-init")
    for name in AIRFLOW_LONG_RUNNING:
        assert {"airflow-db", "airflow-init"} <= wait_for(name), name
    # LocalExecutor: tasks run in the scheduler, talk to the api-server, MinIO
    # and the warehouse, and the first run should find the sample data.
    assert {"airflow-apiserver", "warehouse", "minio", "minio-init", "load-sample-data"} <= wait_for(
        "airflow-scheduler"
    )
    assert {"source-db", "seed-source-db"} <= wait_for("airflow-scheduler")
    assert wait_for("minio-init") == {"minio"}
    assert wait_for("load-sample-data") == {"minio-init"}
    assert wait_for("seed-source-db") == {"source-db"}


def test_named_volumes_hold_all_persistent_data(compose, services):
    declared = set(compose.get("volumes", {}))
    used = {source for s in services.values() for source, _ in volume_mounts(s) if not is_bind(source)}
    assert used == declared, f"declared {sorted(declared)}, used {sorted(used)}"
    persistent = {
        "airflow-db": "/var/lib/postgresql/data",
        "warehouse": "/var/lib/postgresql/data",
        "source-db": "/var/lib/postgresql/data",
        "minio": "/data",
        "airflow-scheduler": f"{AIRFLOW_HOME}/logs",
    }
    for name, path in persistent.items():
        sources = [source for source, target in volume_mounts(services[name]) if target == path]
        assert sources and not is_bind(sources[0]), f"{name}: {path} is not on a named volume"
    assert services["airflow-db"]["volumes"] != services["warehouse"]["volumes"]
    for name in ("airflow-db", "warehouse", "source-db"):
        image = services[name]["image"]
        major = int(re.match(r"postgres:(\d+)", image).group(1))
        # postgres >= 18 images keep data under /var/lib/postgresql/<major>/docker.
        assert major < 18, f"{name}: {image} needs its volume at /var/lib/postgresql"


def test_ports_are_published_on_loopback_by_default(services):
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published
    for port in published:
        assert str(port).startswith("127.0.0.1:"), port


# --- compose file: Airflow ---------------------------------------------------------------


def test_airflow_services_share_one_image_and_mount_the_code(services):
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1, images
    for name in AIRFLOW_SERVICES:
        service = services[name]
        build = service["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context).resolve() == ROOT and (ROOT / "Dockerfile").is_file(), name
        # Built here, never pulled: a registry image of the same name must not stand in for it.
        assert service.get("pull_policy") == "build", name
        mounts = volume_mounts(service)
        for folder in ("dags", "include"):
            assert (f"./{folder}", f"{AIRFLOW_HOME}/{folder}") in mounts, f"{name}: ./{folder} not mounted"
    for name, command in AIRFLOW_COMMANDS.items():
        assert command_list(services[name]) == command, name


def test_airflow_components_share_one_configuration(services):
    reference = environment(services["airflow-scheduler"])
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        differing = {key for key in reference if env.get(key) != reference[key]}
        assert not differing, f"{name} differs from airflow-scheduler on {sorted(differing)}"


def test_airflow_3_settings(services):
    env = environment(services["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "airflow-db"
    execution_api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution_api.hostname == "airflow-apiserver" and execution_api.port == 8080
    assert execution_api.path == "/execution/"
    assert any(port.endswith(":8080") for port in services["airflow-apiserver"]["ports"])
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 32
    assert env["AIRFLOW__API__SECRET_KEY"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    user, role = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(":")
    assert user and role == "admin"
    passwords_dir = str(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).parent)
    for name in ("airflow-init", "airflow-apiserver"):
        mounts = volume_mounts(services[name])
        assert any(target == passwords_dir and not is_bind(source) for source, target in mounts), name
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    init_env = environment(services["airflow-init"])
    assert init_env["AIRFLOW_ADMIN_USERNAME"] == user and init_env["AIRFLOW_ADMIN_PASSWORD"]
    assert command_list(services["airflow-init"])[-1].endswith("airflow-init.sh")


def test_dag_connections_and_variables_point_at_the_compose_services(services):
    from localdev.local_stack import PostgresTarget, airflow_environment

    env = environment(services["airflow-scheduler"])
    expected = airflow_environment("http://minio:9000", PostgresTarget("warehouse", 5432, "u", "p", "d"))
    assert set(expected) <= set(env), f"missing: {sorted(set(expected) - set(env))}"
    assert env["AIRFLOW__MUSIC_KPIS__BACKEND"] == "postgres"

    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    minio = environment(services["minio"])
    assert aws["conn_type"] == "aws"
    assert (aws["login"], aws["password"]) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    endpoint = urlsplit(aws["extra"]["endpoint_url"])
    assert (endpoint.hostname, endpoint.port) == ("minio", 9000)
    assert aws["extra"]["region_name"] == env["AWS_DEFAULT_REGION"]

    warehouse = json.loads(env["AIRFLOW_CONN_MUSIC_KPIS_WAREHOUSE"])
    db = environment(services["warehouse"])
    assert warehouse["conn_type"] == "postgres"
    assert (warehouse["host"], warehouse["port"]) == ("warehouse", 5432)
    assert (warehouse["login"], warehouse["password"], warehouse["schema"]) == (
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
        db["POSTGRES_DB"],
    )

    buckets = environment(services["minio-init"])
    assert env["AIRFLOW_VAR_MUSIC_KPIS_RAW_BUCKET"] == buckets["RAW_BUCKET"]
    assert env["AIRFLOW_VAR_MUSIC_KPIS_PROCESSED_BUCKET"] == buckets["PROCESSED_BUCKET"]
    assert buckets["RAW_BUCKET"] != buckets["PROCESSED_BUCKET"]
    for name in ("minio-init", "load-sample-data"):
        mc = environment(services[name])
        assert urlsplit(mc["S3_ENDPOINT"]).hostname == "minio"
        assert mc["MINIO_ROOT_PASSWORD"] == minio["MINIO_ROOT_PASSWORD"]
        assert mc["RAW_BUCKET"] == buckets["RAW_BUCKET"]


def test_source_connection_points_at_the_seeded_source_db(services):
    env = environment(services["airflow-scheduler"])
    assert env["AIRFLOW__MUSIC_KPIS__METADATA_SOURCE"] in ("s3_csv", "rds_postgres")
    source = json.loads(env["AIRFLOW_CONN_MUSIC_KPIS_SOURCE"])
    db = environment(services["source-db"])
    assert (source["conn_type"], source["host"], source["port"]) == ("postgres", "source-db", 5432)
    assert (source["login"], source["password"], source["schema"]) == (
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
        db["POSTGRES_DB"],
    )
    seed = services["seed-source-db"]
    assert environment(seed)["AIRFLOW_CONN_MUSIC_KPIS_SOURCE"] == env["AIRFLOW_CONN_MUSIC_KPIS_SOURCE"]
    command = command_list(seed)
    data_dir = command[command.index("--data") + 1]
    sources = [source for source, target in volume_mounts(seed) if target == data_dir]
    assert sources and (ROOT / sources[0]).resolve() == ROOT / "data" / "sample"
    assert command[:3] == ["python", "-m", "localdev.source_db"]
    assert environment(services["load-sample-data"])["METADATA_SOURCE"] == env["AIRFLOW__MUSIC_KPIS__METADATA_SOURCE"]


def test_sample_data_is_mounted_for_upload(services):
    service = services["load-sample-data"]
    sample_dir = environment(service)["SAMPLE_DIR"]
    sources = [source for source, target in volume_mounts(service) if target == sample_dir]
    assert sources and (ROOT / sources[0]).resolve() == ROOT / "data" / "sample"
    assert any(ROOT.joinpath("data", "sample").rglob("*.csv"))
    for name in ("minio-init", "load-sample-data"):
        entrypoint = command_list(services[name], "entrypoint")
        script = entrypoint[-1]
        assert any(target == script and (ROOT / source).is_file() for source, target in volume_mounts(services[name]))


# --- compose file: secrets ------------------------------------------------------------------


def test_no_secret_is_written_in_compose_file(compose_text, raw_compose, env_example):
    for name, operator, argument in variable_references(compose_text):
        if SECRET_NAME.search(name) and operator in (":-", "-", ":+", "+"):
            assert name in OPTIONAL_SECRETS and operator in (":-", "-") and argument == "", (
                f"${{{name}{operator}{argument}}}: a secret with a default is a secret in the file"
            )

    interpolation = r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}"
    optional = r"\$\{(?:" + "|".join(OPTIONAL_SECRETS) + r"):?-\}"
    for service_name, service in raw_compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert re.fullmatch(f"{interpolation}|{optional}", value), f"{service_name}: {key}={value!r}"

    for password in re.findall(r'"password"\s*:\s*"([^"]*)"', compose_text):
        assert re.fullmatch(interpolation, password), f"literal password in a connection: {password!r}"
    for userinfo in re.findall(r"://([^/@\s]+)@", compose_text):
        secret = userinfo.split(":", 1)[1] if ":" in userinfo else ""
        assert not secret or re.fullmatch(interpolation, secret), f"literal password in a URL: {userinfo!r}"

    for key, value in env_example.items():
        if SECRET_NAME.search(key) and value:
            assert value not in compose_text, f"the value of {key} from .env.example is written in the compose file"


def test_env_example_secrets_are_safe_placeholders(env_example):
    for key, value in env_example.items():
        if SECRET_NAME.search(key) and key not in OPTIONAL_SECRETS:
            assert value.startswith("change-me"), f"{key}: example secrets must read as placeholders"
            # They are interpolated into JSON strings and URLs.
            assert re.fullmatch(r"[A-Za-z0-9_.-]+", value), key
    assert len(env_example["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses shorter


# --- Dockerfile and build context -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def base_image() -> str:
    froms = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) == 1, f"one build stage expected, got FROM {froms}"
    return froms[0].split()[0]


def test_dockerfile_base_image_is_airflow_3():
    image = base_image()
    assert "$" not in image, "the Astro CLI reads the Runtime version from a literal FROM line"
    astro = re.fullmatch(r"(?:astrocrpublic\.azurecr\.io|air\.astronomer\.io)/runtime:(\d+)\.(\d+)-(\d+)", image)
    official = re.fullmatch(r"apache/airflow:(\d+)\.(\d+)\.(\d+)(?:-python3\.\d+)?", image)
    match = astro or official
    assert match, f"not an Airflow 3 image (Astro Runtime 3.x or apache/airflow:3.x): {image}"
    major, minor = int(match.group(1)), int(match.group(2))
    assert major == 3
    # Tests run on the Airflow of requirements-dev.txt: the image runs the same minor.
    dev_pin = re.search(r"^apache-airflow==(\d+)\.(\d+)\.", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert dev_pin and (int(dev_pin.group(1)), int(dev_pin.group(2))) == (major, minor), (
        f"{image} vs requirements-dev.txt {dev_pin and dev_pin.group(0)}"
    )


def test_dockerfile_installs_requirements():
    instructions = dockerfile_instructions()
    copies = any(k in ("COPY", "ADD") and "requirements.txt" in rest for k, rest in instructions)
    installs = any(k == "RUN" and re.search(r"pip install .*-r \S*requirements\.txt", rest) for k, rest in instructions)
    # Astro Runtime images (not the -base variant) COPY packages.txt and
    # requirements.txt and install them in their ONBUILD steps.
    onbuild = re.fullmatch(r".*/runtime:[\d.-]+", base_image()) is not None
    assert onbuild or (copies and installs), "requirements.txt is neither installed by the base image nor here"
    if onbuild:
        assert (ROOT / "packages.txt").is_file(), "ONBUILD COPY packages.txt fails without the file"
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^apache-airflow-providers-amazon==", requirements, re.M)
    assert not re.search(r"^apache-airflow\s*[=~<>!]", requirements, re.M), (
        "Airflow comes from the base image; pinning it in requirements.txt breaks the Runtime"
    )
    assert any(k == "RUN" and "include.music_kpis" in rest for k, rest in instructions), (
        "the build should prove the project imports with the installed requirements"
    )


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps a root-relative path out of the build context (last match wins)."""
    ignored = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, c) for c in candidates for prefix in prefixes) or (
            pattern.startswith("**/") and any(fnmatch.fnmatch(part, candidates[1]) for part in parts)
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_out_and_the_project_in():
    for path in (".env", "docker/astro.env", ".venv", ".local", ".git", "include/music_kpis/__pycache__/x.pyc"):
        assert dockerignored(path), path
    for path in (
        "requirements.txt",
        "packages.txt",
        "Dockerfile",
        ".env.example",
        "dags/music_streaming_kpis.py",
        "include/music_kpis/tasks.py",
        "include/sql/migrations/0001_create_tables.sql",
        "include/schemas/streams.yaml",
    ):
        assert not dockerignored(path), path


# --- helper scripts ---------------------------------------------------------------------------


def stub_command(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.mark.parametrize(
    ("shell", "script"),
    [("bash", "airflow-init.sh"), ("sh", "minio-init.sh"), ("sh", "load-sample-data.sh")],
)
def test_scripts_parse(shell, script):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} not installed")
    subprocess.run([shell, "-n", str(ROOT / "docker" / script)], check=True)


def test_airflow_init_migrates_and_writes_the_admin_password(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "airflow-calls"
    stub_command(bin_dir, "airflow", f'echo "$*" >> "{calls}"; [ "$1" = version ] && echo 3.3.2; exit 0')
    (bin_dir / "python").symlink_to(sys.executable)
    passwords = tmp_path / "auth" / "passwords.json"
    password = 'p4ss "quoted" \\ word'
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW_ADMIN_USERNAME": "admin",
        "AIRFLOW_ADMIN_PASSWORD": password,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW_RUN_AS": subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip(),
    }
    result = subprocess.run(["bash", str(ROOT / "docker" / "airflow-init.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(passwords.read_text()) == {"admin": password}
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert (tmp_path / "home" / "logs").is_dir()
    assert calls.read_text().splitlines()[0] == "db migrate"

    del env["AIRFLOW_ADMIN_PASSWORD"]
    failed = subprocess.run(["bash", str(ROOT / "docker" / "airflow-init.sh")], env=env, capture_output=True)
    assert failed.returncode != 0, "no password in the environment must fail the init"


def run_mc_script(tmp_path: Path, script: str, **extra: str) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / f"mc-calls-{script}"
    stub_command(bin_dir, "mc", f'echo "$*" >> "{calls}"')
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "S3_ENDPOINT": "http://minio:9000",
        "MINIO_ROOT_USER": "user",
        "MINIO_ROOT_PASSWORD": "password",
        "RAW_BUCKET": "raw-b",
        "PROCESSED_BUCKET": "processed-b",
        **extra,
    }
    subprocess.run(["sh", str(ROOT / "docker" / script)], env=env, check=True, capture_output=True)
    return calls.read_text().splitlines()


def test_minio_init_creates_both_buckets_idempotently(tmp_path):
    calls = run_mc_script(tmp_path, "minio-init.sh")
    assert calls == [
        "alias set local http://minio:9000 user password",
        "mb --ignore-existing local/raw-b",
        "mb --ignore-existing local/processed-b",
    ]


def test_load_sample_data_keys_are_paths_relative_to_the_folder(tmp_path):
    sample = ROOT / "data" / "sample"
    calls = run_mc_script(tmp_path, "load-sample-data.sh", SAMPLE_DIR=str(sample))
    assert calls[0] == "alias set local http://minio:9000 user password"
    # `mc cp --recursive dir/ alias/bucket/` copies the folder's contents:
    # data/sample/streams/streams1.csv becomes raw-b/streams/streams1.csv.
    assert f"cp --recursive {sample}/ local/raw-b/" in calls


def test_astro_env_gives_the_astro_cli_the_compose_connections(tmp_path, services):
    env_file = tmp_path / ".env"
    shutil.copy(ENV_EXAMPLE, env_file)
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "astro_env.py"), "--env-file", str(env_file), "--output", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    astro = dict(line.split("=", 1) for line in lines)
    compose_env = environment(services["airflow-scheduler"])
    assert all(" " not in value for value in astro.values()), "env-file values must not need quoting"
    for key, value in astro.items():
        if key.startswith("AIRFLOW_CONN_"):
            continue
        assert value == compose_env[key], key

    def published(service: str, container_port: int) -> int:
        for port in services[service]["ports"]:
            _address, host_port, target = str(port).rsplit(":", 2)
            if int(target) == container_port:
                return int(host_port)
        raise AssertionError(f"{service}:{container_port} is not published")

    aws, compose_aws = (json.loads(e["AIRFLOW_CONN_AWS_DEFAULT"]) for e in (astro, compose_env))
    assert urlsplit(aws["extra"].pop("endpoint_url")).netloc == f"host.docker.internal:{published('minio', 9000)}"
    compose_aws["extra"].pop("endpoint_url")
    assert aws == compose_aws
    warehouse, compose_warehouse = (json.loads(e["AIRFLOW_CONN_MUSIC_KPIS_WAREHOUSE"]) for e in (astro, compose_env))
    assert (warehouse.pop("host"), warehouse.pop("port")) == ("host.docker.internal", published("warehouse", 5432))
    compose_warehouse.pop("host"), compose_warehouse.pop("port")
    assert warehouse == compose_warehouse

    (tmp_path / "empty.env").write_text("WAREHOUSE_USER=x\n")
    missing = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "astro_env.py"), "--env-file", str(tmp_path / "empty.env")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "MINIO_ROOT_PASSWORD" in missing.stderr
