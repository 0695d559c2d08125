-- Every raw file of one run (batch) with its outcome and reason, in key (byte) order.
-- batch_id is hex only (files.batch_id_for), checked before it is rendered here.
SELECT dataset, raw_key, file_id, outcome, reason, rows_quarantined
FROM etl_batch_files
WHERE batch_id = '{{ batch_id }}'
ORDER BY raw_key {{ byte_order }}
