-- Recompute the KPI tables for the dirty dates only, in one transaction. For
-- every date it touches the result equals a computation from scratch. Each
-- KPI table is one file pair in kpis/: <table>.yaml (its columns) and
-- <table>.sql (the SELECT that computes them, mostly from tmp_kpi_track_hours
-- below). Its last statement returns the dates it recomputed: the checks
-- after loading check those dates only (include/music_kpis/quality_checks.py).
{%- if backend == 'postgres' %}
-- The recompute reads the fact table for these dates only; fresh statistics
-- on them let the planner use the key's listen_date prefix.
ANALYZE kpi_dirty_dates;
{%- endif %}
{%- for kpi in kpi_tables() %}
DELETE FROM {{ kpi.name }} WHERE listen_date IN (SELECT listen_date FROM kpi_dirty_dates);
{%- endfor %}

-- The plays of the dirty dates counted per (date, hour, track), with the
-- columns of the track's song that some KPI names (KpiTable.identifiers).
-- A song's columns are functions of its track, so every KPI but a distinct
-- count of listeners is an aggregate of these rows, each weighing its
-- `plays`: a few hundred thousand rows for millions of plays, made by one
-- pass over them, instead of a copy of every play read again by each KPI.
-- The inner join keeps the plays whose song is known, as the listener
-- counts (the KPIs' only other reads of streams) do.
{%- set kpi_words = namespace(names=[]) %}
{%- for kpi in kpi_tables() %}{% set kpi_words.names = kpi_words.names + kpi.identifiers %}{% endfor %}
DROP TABLE IF EXISTS tmp_kpi_track_hours;
CREATE TEMP TABLE tmp_kpi_track_hours AS
SELECT p.listen_date, p.listen_hour, p.track_id, p.plays
       {%- for c in warehouse_columns('songs') if c != 'track_id' and c in kpi_words.names %}, s."{{ c }}"{% endfor %}
FROM (
    SELECT listen_date, listen_hour, track_id, COUNT(*) AS plays
    FROM streams
    WHERE listen_date IN (SELECT listen_date FROM kpi_dirty_dates)
    GROUP BY listen_date, listen_hour, track_id
) p
JOIN songs s ON s.track_id = p.track_id;
{%- if backend == 'postgres' %}

-- Statistics for the KPI queries' plans (a temp table has none until analyzed).
ANALYZE tmp_kpi_track_hours;
{%- endif %}

-- Each KPI's rows are made by CREATE TABLE AS and then appended: PostgreSQL
-- may read the plays for a CREATE TABLE AS with parallel workers, never for
-- an INSERT ... SELECT (the genre listeners of 5M plays: about 1 s less).
{%- for kpi in kpi_tables() %}
{%- set columns = kpi.column_names | join(", ") %}

DROP TABLE IF EXISTS tmp_{{ kpi.name }};
CREATE TEMP TABLE tmp_{{ kpi.name }} ({{ columns }}) AS
{% include "kpis/" ~ kpi.name ~ ".sql" %};

INSERT INTO {{ kpi.name }} ({{ columns }})
SELECT {{ columns }} FROM tmp_{{ kpi.name }};
{%- endfor %}

DROP TABLE IF EXISTS tmp_recomputed_dates;
CREATE TEMP TABLE tmp_recomputed_dates AS
SELECT listen_date FROM kpi_dirty_dates;

DELETE FROM kpi_dirty_dates;

SELECT TO_CHAR(listen_date, 'YYYY-MM-DD') AS listen_date
FROM tmp_recomputed_dates
ORDER BY 1;
