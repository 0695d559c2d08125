{#- Included by the load steps, last: record the loaded files in the ledger,
    in the same transaction as their rows. -#}
INSERT INTO etl_file_ledger
    (file_id, dataset, raw_key, etag, outcome, reason, rows_read, rows_quarantined, batch_id)
SELECT file_id, '{{ dataset }}', raw_key, etag, 'loaded', NULL, rows_read, rows_quarantined, '{{ batch }}'
FROM tmp_{{ dataset }}_files;
