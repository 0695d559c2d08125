SELECT listen_date, listen_hour, unique_listeners, total_plays, unique_tracks, track_diversity_index, top_artist
FROM hourly_kpis
ORDER BY listen_date, listen_hour
