{#- Included by the load steps: the batch's files of one dataset to load that
    are not in the ledger yet, one row each (a rerun may have staged the
    manifest twice). Expects `dataset` and `batch` to be set. -#}
DROP TABLE IF EXISTS tmp_{{ dataset }}_files;
CREATE TEMP TABLE tmp_{{ dataset }}_files AS
SELECT file_id, MIN(raw_key) AS raw_key, MIN(etag) AS etag,
       MAX(rows_read) AS rows_read, MAX(rows_quarantined) AS rows_quarantined
FROM stg_files
WHERE batch_id = '{{ batch }}'
  AND dataset = '{{ dataset }}'
  AND outcome = 'loaded'
  AND file_id NOT IN (SELECT file_id FROM etl_file_ledger)
GROUP BY file_id;
