-- For each genre, the track that led it (genre_kpis.top_track_id) on the most dates, with
-- its name and artists; ties go to the smallest track id in byte order.
SELECT ranked.track_genre, ranked.top_track_id, songs.track_name, songs.artists, ranked.dates_on_top
FROM (
    SELECT track_genre, top_track_id, dates_on_top,
           ROW_NUMBER() OVER (
               PARTITION BY track_genre ORDER BY dates_on_top DESC, top_track_id {{ byte_order }}
           ) AS pick
    FROM (
        SELECT track_genre, top_track_id, COUNT(*) AS dates_on_top
        FROM genre_kpis
        GROUP BY track_genre, top_track_id
    ) per_track
) ranked
LEFT JOIN songs ON songs.track_id = ranked.top_track_id
WHERE ranked.pick = 1
ORDER BY ranked.track_genre {{ byte_order }}
