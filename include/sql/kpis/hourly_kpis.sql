-- hourly_kpis of the dirty dates, from tmp_kpi_plays (see refresh_kpis.sql):
-- one SELECT, its columns in the order of hourly_kpis.yaml.
-- The top artist's ties go to the smallest value in byte order.
SELECT h.listen_date, h.listen_hour, h.unique_listeners, h.total_plays, h.unique_tracks,
       CAST(h.unique_tracks AS DOUBLE PRECISION) / h.total_plays, leading_artist.artists
FROM (
    SELECT listen_date, listen_hour,
           COUNT(DISTINCT user_id) AS unique_listeners,
           COUNT(*) AS total_plays,
           COUNT(DISTINCT track_id) AS unique_tracks
    FROM tmp_kpi_plays
    GROUP BY listen_date, listen_hour
) h
JOIN (
    SELECT listen_date, listen_hour, artists,
           ROW_NUMBER() OVER (
               PARTITION BY listen_date, listen_hour
               ORDER BY plays DESC, artists {{ byte_order }} ASC
           ) AS pick
    FROM (
        SELECT listen_date, listen_hour, artists, COUNT(*) AS plays
        FROM tmp_kpi_plays
        GROUP BY listen_date, listen_hour, artists
    ) per_artist
) leading_artist
  ON leading_artist.listen_date = h.listen_date AND leading_artist.listen_hour = h.listen_hour
     AND leading_artist.pick = 1
