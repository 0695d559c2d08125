{#- Included by the load steps, last: record the loaded files in the ledger
    (same transaction as their rows) and free their staging rows. -#}
INSERT INTO etl_file_ledger
    (file_id, dataset, raw_key, etag, outcome, reason, rows_read, rows_quarantined, batch_id)
SELECT file_id, '{{ dataset }}', raw_key, etag, 'loaded', NULL, rows_read, rows_quarantined, '{{ batch }}'
FROM tmp_{{ dataset }}_files;

DELETE FROM stg_{{ dataset }} WHERE file_id IN (SELECT file_id FROM tmp_{{ dataset }}_files);
