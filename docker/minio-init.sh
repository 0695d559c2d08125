#!/bin/sh
# minio-init (docker-compose.yaml): create the raw and processed buckets.
# Idempotent: safe on every `docker compose up`.
set -eu

mc alias set local "${S3_ENDPOINT:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" >/dev/null
for bucket in "${RAW_BUCKET:?}" "${PROCESSED_BUCKET:?}"; do
    mc mb --ignore-existing "local/${bucket}"
done
