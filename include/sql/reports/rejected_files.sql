-- The files one batch rejected, with the reason, in key (byte) order.
SELECT raw_key, reason
FROM etl_batch_files
WHERE batch_id = %(batch_id)s AND outcome = 'rejected'
ORDER BY raw_key COLLATE "C"
