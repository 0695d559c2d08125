-- The report's listening by date and hour of day, and the track diversity index (kpi_report.py).
SELECT listen_date, listen_hour, total_plays, unique_listeners, track_diversity_index
FROM hourly_kpis
ORDER BY listen_date, listen_hour
