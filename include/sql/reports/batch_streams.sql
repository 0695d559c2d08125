-- What one batch did with stream rows.
SELECT stream_rows, streams_loaded, streams_parked, stream_repeats_skipped
FROM etl_batches
WHERE batch_id = %(batch_id)s
