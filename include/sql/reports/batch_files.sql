-- Every raw file one batch saw, with its outcome, in key (byte) order.
SELECT dataset, raw_key, outcome, rows_quarantined
FROM etl_batch_files
WHERE batch_id = %(batch_id)s
ORDER BY raw_key COLLATE "C"
