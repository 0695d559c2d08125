-- How many rows an extract of one source table takes, and the newest change
-- among them (the next extract's watermark). Same snapshot as the COPY.
SELECT COUNT(*),
       {% if incremental %}MAX({{ updated_at | ident }}){% else %}NULL{% endif %}
FROM {{ table | ident }}
{%- if since %}
WHERE {{ updated_at | ident }} > TIMESTAMPTZ '{{ since }}' OR {{ updated_at | ident }} IS NULL
{%- endif %}
