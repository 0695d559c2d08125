#!/bin/sh
# load-sample-data (docker-compose.yaml): upload a raw-bucket-shaped folder
# (default: data/sample) into the raw bucket. Object keys are the paths
# relative to the folder: streams/streams1.csv, metadata/users/users.csv, ...
# Re-uploading an unchanged file keeps its key and ETag, so the DAG skips it.
set -eu

sample_dir="${SAMPLE_DIR:-/sample}"
mc alias set local "${S3_ENDPOINT:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" >/dev/null
# The trailing slash copies the folder's contents, not the folder itself.
if [ "${METADATA_SOURCE:-s3_csv}" = "rds_postgres" ]; then
    # Users and tracks come from the operational database (seed-source-db).
    mc cp --recursive "${sample_dir}/streams/" "local/${RAW_BUCKET:?}/streams/"
else
    mc cp --recursive "${sample_dir}/" "local/${RAW_BUCKET:?}/"
fi
mc ls --recursive "local/${RAW_BUCKET}"
