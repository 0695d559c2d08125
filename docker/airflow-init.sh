#!/usr/bin/env bash
# airflow-init (docker-compose.yaml), run once as root before the other Airflow
# services start:
#   1. migrate the Airflow metadata database;
#   2. write the admin's password for the simple auth manager, from .env;
#   3. hand the shared volumes (logs, passwords file) to the user the other
#      Airflow containers run as.
# `make up` (localdev/stack.py) runs it too, with AIRFLOW_RUN_AS empty: there
# every process runs as the user who started it, so step 3 is skipped.
set -euo pipefail

: "${AIRFLOW_ADMIN_USERNAME:?}" "${AIRFLOW_ADMIN_PASSWORD:?}"
passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"
logs_dir="${AIRFLOW__LOGGING__BASE_LOG_FOLDER:-${AIRFLOW_HOME:?}/logs}"
# Unset: astro (the image's user); set but empty: no chown.
run_as="${AIRFLOW_RUN_AS-astro}"

mkdir -p "$logs_dir" "$(dirname "$passwords_file")"

echo "Migrating the Airflow metadata database"
airflow db migrate

# The simple auth manager reads {"user": "password"} from this file and only
# generates passwords for users missing from it. Rewritten on every start, so
# changing AIRFLOW_ADMIN_PASSWORD in .env takes effect on the next `up`.
echo "Writing the password of Airflow user '${AIRFLOW_ADMIN_USERNAME}'"
python -c '
import json, os, sys
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump({os.environ["AIRFLOW_ADMIN_USERNAME"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
    f.write("\n")
' "$passwords_file"
chmod 600 "$passwords_file"

if [ -n "$run_as" ]; then
    chown -R "$(id -u "$run_as"):$(id -g "$run_as")" "$logs_dir" "$(dirname "$passwords_file")"
fi
echo "airflow-init done (Airflow $(airflow version 2>/dev/null | tail -n 1))"
