-- genre_kpis of the dirty dates, from tmp_kpi_plays (see refresh_kpis.sql):
-- one SELECT, its columns in the order of genre_kpis.yaml.
-- Averages are exact integer sums divided once, so a rerun gives the same
-- bits on either backend; avg_popularity averages the plays whose song
-- popularity is known. The top track's ties go to the smallest track_id in
-- byte order.
SELECT g.listen_date, g.track_genre, g.total_plays, g.unique_listeners,
       g.avg_popularity, g.avg_duration_sec, leading_track.track_id
FROM (
    SELECT listen_date, track_genre,
           COUNT(*) AS total_plays,
           COUNT(DISTINCT user_id) AS unique_listeners,
           CAST(SUM(popularity) AS DOUBLE PRECISION) / NULLIF(COUNT(popularity), 0) AS avg_popularity,
           CAST(SUM(duration_ms) AS DOUBLE PRECISION) / (1000 * COUNT(*)) AS avg_duration_sec
    FROM tmp_kpi_plays
    GROUP BY listen_date, track_genre
) g
JOIN (
    SELECT listen_date, track_genre, track_id,
           ROW_NUMBER() OVER (
               PARTITION BY listen_date, track_genre
               ORDER BY plays DESC, track_id {{ byte_order }} ASC
           ) AS pick
    FROM (
        SELECT listen_date, track_genre, track_id, COUNT(*) AS plays
        FROM tmp_kpi_plays
        GROUP BY listen_date, track_genre, track_id
    ) per_track
) leading_track
  ON leading_track.listen_date = g.listen_date AND leading_track.track_genre = g.track_genre AND leading_track.pick = 1
