-- Close the batch, in one transaction: rejected files enter the ledger (so
-- they are processed again only when their content changes), every file the
-- batch saw is logged with its outcome, and staging is emptied. Runs never
-- overlap (max_active_runs=1), so rows a failed run left in staging go too:
-- a later run stages again whatever it needs.
{%- set batch = batch_id_for(run_id) %}

INSERT INTO etl_file_ledger
    (file_id, dataset, raw_key, etag, outcome, reason, rows_read, rows_quarantined, batch_id)
SELECT file_id, MIN(dataset), MIN(raw_key), MIN(etag), 'rejected', MIN(reason),
       MAX(rows_read), MAX(rows_quarantined), '{{ batch }}'
FROM stg_files
WHERE batch_id = '{{ batch }}'
  AND outcome = 'rejected'
  AND file_id NOT IN (SELECT file_id FROM etl_file_ledger)
GROUP BY file_id;

INSERT INTO etl_batch_files
    (batch_id, file_id, dataset, raw_key, outcome, reason, rows_read, rows_quarantined)
SELECT '{{ batch }}', file_id, MIN(dataset), MIN(raw_key),
       MIN(outcome),
       MIN(reason), MAX(rows_read), MAX(rows_quarantined)
FROM stg_files
WHERE batch_id = '{{ batch }}'
  AND file_id NOT IN (SELECT file_id FROM etl_batch_files WHERE batch_id = '{{ batch }}')
GROUP BY file_id;

{#- PostgreSQL empties a table by TRUNCATE within the transaction (instead of
    marking every staged row deleted, seconds for millions of rows); on
    Redshift TRUNCATE commits the open transaction, so it keeps DELETE. #}
{%- set empty = 'TRUNCATE' if backend == 'postgres' else 'DELETE FROM' %}
{{ empty }} stg_users;
{{ empty }} stg_songs;
{{ empty }} stg_streams;
{{ empty }} stg_files;
