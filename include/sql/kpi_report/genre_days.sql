-- The report's plays and unique listeners per genre and date (kpi_report.py).
SELECT listen_date, track_genre, total_plays, unique_listeners
FROM genre_kpis
ORDER BY listen_date, track_genre {{ byte_order }}
