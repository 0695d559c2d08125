{#- join_most_played(value, groups, alias, to): joins to the rows of `to` (one
    per group of tmp_kpi_track_hours) the value with most plays in that group
    as `alias`, ties going to the smallest value in byte order (`byte_order`,
    warehouse.py). A value's plays are the sum of its tracks' plays, a
    BIGINT to sort by (PostgreSQL sums BIGINTs as NUMERIC). #}
{% macro join_most_played(value, groups, alias, to) -%}
{%- set by = groups | join(', ') -%}
JOIN (
    SELECT {{ by }}, {{ value }},
           ROW_NUMBER() OVER (PARTITION BY {{ by }} ORDER BY plays DESC, {{ value }} {{ byte_order }} ASC) AS pick
    FROM (
        SELECT {{ by }}, {{ value }}, CAST(SUM(plays) AS BIGINT) AS plays
        FROM tmp_kpi_track_hours
        GROUP BY {{ by }}, {{ value }}
    ) per_value
) {{ alias }}
  ON {% for group in groups %}{{ alias }}.{{ group }} = {{ to }}.{{ group }} AND {% endfor %}{{ alias }}.pick = 1
{%- endmacro %}
