-- The rows of each KPI table's latest date (music_kpis_report).
{%- for kpi in kpi_tables() %}
{{ "UNION ALL" if not loop.first }}
SELECT '{{ kpi.name }}' AS kpi_table, TO_CHAR(listen_date, 'YYYY-MM-DD') AS latest_date, COUNT(*) AS kpi_rows
FROM {{ kpi.name }}
WHERE listen_date = (SELECT MAX(listen_date) FROM {{ kpi.name }})
GROUP BY listen_date
{%- endfor %}
ORDER BY kpi_table
