"""Write the env file for `astro dev start --env docker/astro.env`.

The Astro CLI starts its own Airflow containers and ignores docker-compose.yaml.
This gives them the same connections and variables the compose services get,
pointing at the MinIO and warehouse that docker-compose.yaml publishes on the
host (started with `docker compose up -d minio minio-init load-sample-data warehouse`).
Values come from .env, so no password is written twice by hand.

    python3 docker/astro_env.py                      # Docker Desktop: host.docker.internal
    python3 docker/astro_env.py --host 172.17.0.1    # Linux: the docker0 bridge (see docs/docker.md)

Standard library only: runs with any Python 3.11+.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# The defaults docker-compose.yaml uses when .env leaves a value out.
DEFAULTS = {
    "MINIO_ROOT_USER": "minio-admin",
    "WAREHOUSE_USER": "music",
    "WAREHOUSE_DB": "music",
    "MUSIC_KPIS_RAW_BUCKET": "music-streaming-raw",
    "MUSIC_KPIS_PROCESSED_BUCKET": "music-streaming-processed",
    "MINIO_API_PORT": "9000",
    "WAREHOUSE_PORT": "5433",
}
REQUIRED = ("MINIO_ROOT_PASSWORD", "WAREHOUSE_PASSWORD")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file: comments, blank lines and quotes handled."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def astro_environment(settings: dict[str, str], host: str) -> dict[str, str]:
    """AIRFLOW_CONN_* / AIRFLOW_VAR_* for the Astro CLI's containers."""

    def get(name: str) -> str:
        value = settings.get(name) or DEFAULTS.get(name, "")
        if not value and name in REQUIRED:
            raise SystemExit(f"{name} is not set in .env (cp .env.example .env)")
        return value

    aws = {
        "conn_type": "aws",
        "login": get("MINIO_ROOT_USER"),
        "password": get("MINIO_ROOT_PASSWORD"),
        "extra": {"endpoint_url": f"http://{host}:{get('MINIO_API_PORT')}", "region_name": REGION},
    }
    warehouse = {
        "conn_type": "postgres",
        "host": host,
        "port": int(get("WAREHOUSE_PORT")),
        "login": get("WAREHOUSE_USER"),
        "password": get("WAREHOUSE_PASSWORD"),
        "schema": get("WAREHOUSE_DB"),
    }
    compact = {"separators": (",", ":")}  # no spaces: env-file parsers differ on them
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws, **compact),
        "AIRFLOW_CONN_MUSIC_KPIS_WAREHOUSE": json.dumps(warehouse, **compact),
        "AIRFLOW__MUSIC_KPIS__BACKEND": "postgres",
        "AIRFLOW_VAR_MUSIC_KPIS_RAW_BUCKET": get("MUSIC_KPIS_RAW_BUCKET"),
        "AIRFLOW_VAR_MUSIC_KPIS_PROCESSED_BUCKET": get("MUSIC_KPIS_PROCESSED_BUCKET"),
        "AWS_DEFAULT_REGION": REGION,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-file", type=Path, default=PROJECT / ".env", help="compose settings (default: .env)")
    parser.add_argument("--host", default="host.docker.internal", help="address of the host, seen from containers")
    parser.add_argument("--output", type=Path, default=PROJECT / "docker" / "astro.env", help="'-' for stdout")
    args = parser.parse_args(argv)

    if not args.env_file.is_file():
        raise SystemExit(f"{args.env_file} not found: cp .env.example .env")
    environment = astro_environment(read_dotenv(args.env_file), args.host)
    text = "# Written by docker/astro_env.py from .env. Holds passwords: keep it out of git.\n"
    text += "".join(f"{key}={value}\n" for key, value in environment.items())
    if str(args.output) == "-":
        sys.stdout.write(text)
    else:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
