-- Upsert one dimension (users or songs) from the batch's staged files, in one
-- transaction. Newest value wins: the last row of a file, the last file in key
-- (byte) order, and a later batch over an earlier one.
-- params: dataset, key, columns (the warehouse column list, from the schema),
-- play_dates (where the dates each key was played on are kept; set for the
-- datasets KPIs read: a changed row marks those dates dirty).
{%- set dataset = params.dataset %}
{%- set batch = batch_id_for(run_id) %}
{%- set cols = params.columns %}

{% include '_batch_files.sql' %}

-- One source row per key, as Redshift MERGE requires.
DROP TABLE IF EXISTS tmp_{{ dataset }}_source;
CREATE TEMP TABLE tmp_{{ dataset }}_source AS
SELECT {% for c in cols %}"{{ c }}"{{ ", " if not loop.last }}{% endfor %}
FROM (
    SELECT s.*, ROW_NUMBER() OVER (
        PARTITION BY s."{{ params.key }}"
        ORDER BY f.raw_key {{ byte_order }} DESC, s.source_row DESC
    ) AS pick
    FROM stg_{{ dataset }} s
    JOIN tmp_{{ dataset }}_files f ON f.file_id = s.file_id
) ranked
WHERE pick = 1;
{%- if params.play_dates %}

-- Dates with plays of rows whose values change (to or from NULL too) must be
-- recomputed: any column, so that a KPI reading a new column is covered. The
-- dates come from {{ params.play_dates }}, not the fact table: Redshift has no
-- index to find a key's plays, so that join read the whole history.
INSERT INTO kpi_dirty_dates (listen_date)
SELECT DISTINCT p.listen_date
FROM {{ params.play_dates }} p
JOIN tmp_{{ dataset }}_source src ON src."{{ params.key }}" = p."{{ params.key }}"
JOIN {{ dataset }} cur ON cur."{{ params.key }}" = src."{{ params.key }}"
WHERE ({% for c in cols if c != params.key %}
       cur."{{ c }}" <> src."{{ c }}" OR (cur."{{ c }}" IS NULL) <> (src."{{ c }}" IS NULL){{ " OR " if not loop.last }}
       {%- endfor %})
  AND p.listen_date NOT IN (SELECT listen_date FROM kpi_dirty_dates);
{%- endif %}

MERGE INTO {{ dataset }}
USING tmp_{{ dataset }}_source src
ON {{ dataset }}."{{ params.key }}" = src."{{ params.key }}"
WHEN MATCHED THEN UPDATE SET
    {% for c in cols if c != params.key %}"{{ c }}" = src."{{ c }}"{{ ", " if not loop.last }}{% endfor %}
WHEN NOT MATCHED THEN INSERT ({% for c in cols %}"{{ c }}"{{ ", " if not loop.last }}{% endfor %})
VALUES ({% for c in cols %}src."{{ c }}"{{ ", " if not loop.last }}{% endfor %});

{% include '_ledger_loaded.sql' %}
