SELECT listen_date, track_genre, total_plays, unique_listeners, avg_popularity, avg_duration_sec, top_track_id
FROM genre_kpis
ORDER BY listen_date, track_genre COLLATE "C"
