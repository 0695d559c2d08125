-- Recompute the KPI tables for the dirty dates only, in one transaction. For
-- every date it touches the result equals a computation from scratch. Each
-- KPI table is one file pair in kpis/: <table>.yaml (its columns) and
-- <table>.sql (the SELECT that computes them, from tmp_kpi_plays). Its last
-- statement returns the dates it recomputed: the checks after loading check
-- those dates only (include/music_kpis/quality_checks.py).
{%- if backend == 'postgres' %}
-- The recompute reads the fact table for these dates only; fresh statistics
-- on them let the planner use the key's listen_date prefix.
ANALYZE kpi_dirty_dates;
{%- endif %}
{%- for kpi in kpi_tables() %}
DELETE FROM {{ kpi.name }} WHERE listen_date IN (SELECT listen_date FROM kpi_dirty_dates);
{%- endfor %}

-- Every play of the dirty dates with the columns of its song that some KPI
-- names (KpiTable.identifiers): a KPI reading another column gets it too, and
-- a first load does not copy every song column into every play.
{%- set kpi_words = namespace(names=[]) %}
{%- for kpi in kpi_tables() %}{% set kpi_words.names = kpi_words.names + kpi.identifiers %}{% endfor %}
DROP TABLE IF EXISTS tmp_kpi_plays;
CREATE TEMP TABLE tmp_kpi_plays AS
SELECT p.listen_date, p.listen_hour, p.user_id,
       {% for c in warehouse_columns('songs') if c == 'track_id' or c in kpi_words.names %}s."{{ c }}"{{ ", " if not loop.last }}{% endfor %}
FROM streams p
JOIN songs s ON s.track_id = p.track_id
WHERE p.listen_date IN (SELECT listen_date FROM kpi_dirty_dates);
{%- if backend == 'postgres' %}

-- Statistics for the KPI queries' plans (a temp table has none until analyzed).
ANALYZE tmp_kpi_plays;
{%- endif %}
{%- for kpi in kpi_tables() %}

INSERT INTO {{ kpi.name }} ({{ kpi.column_names | join(", ") }})
{% include "kpis/" ~ kpi.name ~ ".sql" %};
{%- endfor %}

DROP TABLE IF EXISTS tmp_recomputed_dates;
CREATE TEMP TABLE tmp_recomputed_dates AS
SELECT listen_date FROM kpi_dirty_dates;

DELETE FROM kpi_dirty_dates;

SELECT TO_CHAR(listen_date, 'YYYY-MM-DD') AS listen_date
FROM tmp_recomputed_dates
ORDER BY 1;
