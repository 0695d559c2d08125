-- Every date with plays is to be recomputed: a KPI table was made anew from
-- its YAML (include/music_kpis/kpis.py).
INSERT INTO kpi_dirty_dates (listen_date)
SELECT DISTINCT listen_date
FROM streams
WHERE listen_date NOT IN (SELECT listen_date FROM kpi_dirty_dates);
