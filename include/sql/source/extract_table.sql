-- One source table as CSV, in the raw CSV schema's column names and value
-- forms: booleans as true/false, timestamps in UTC, durations scaled to ms.
-- Runs on the operational PostgreSQL (never the warehouse) inside the
-- extract's REPEATABLE READ, read-only transaction, so every table of one
-- extract comes from the same snapshot. COPY streams rows as the server reads
-- them: memory stays flat whatever the table's size.
-- Rendered by include/music_kpis/metadata_source.py; `since` is a
-- timestamp it formats itself (ISO 8601, UTC), never user input.
{%- macro value(c) -%}
{%- if c.scale -%}
CAST(ROUND({{ c.source | ident }} * {{ c.scale }}) AS BIGINT)
{%- elif c.data_type == 'boolean' -%}
CASE WHEN {{ c.source | ident }} THEN 'true' WHEN NOT {{ c.source | ident }} THEN 'false' END
{%- elif c.data_type == 'timestamp with time zone' -%}
to_char({{ c.source | ident }} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
{%- elif c.data_type == 'timestamp without time zone' -%}
to_char({{ c.source | ident }}, 'YYYY-MM-DD HH24:MI:SS.US')
{%- else -%}
{{ c.source | ident }}
{%- endif -%}
{%- endmacro %}
COPY (
    SELECT
    {%- for c in columns %}
        {{ value(c) }} AS {{ c.name | ident }}{{ "," if not loop.last }}
    {%- endfor %}
    FROM {{ table | ident }}
    {%- if since %}
    -- Rows without a timestamp cannot be placed after a watermark: always taken.
    WHERE {{ updated_at | ident }} > TIMESTAMPTZ '{{ since }}' OR {{ updated_at | ident }} IS NULL
    {%- endif %}
    ORDER BY {{ key | ident }}
) TO STDOUT WITH (FORMAT csv, HEADER true)
