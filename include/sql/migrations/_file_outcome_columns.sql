{#- What happened to one raw file version, as the batch manifest (stg_files),
    the ledger (etl_file_ledger) and the batch log (etl_batch_files, without
    the etag: etag = false) record it. #}
    file_id VARCHAR(32){{ zstd }} NOT NULL,
    dataset VARCHAR(16){{ zstd }} NOT NULL,
    raw_key VARCHAR(1024){{ zstd }} NOT NULL,
{%- if etag %}
    etag VARCHAR(128){{ zstd }} NOT NULL,{% endif %}
    outcome VARCHAR(16){{ zstd }} NOT NULL,
    reason VARCHAR(4096){{ zstd }},
    rows_read BIGINT{{ az64 }} NOT NULL,
    rows_quarantined BIGINT{{ az64 }} NOT NULL
