-- Recompute the KPIs of the dirty dates only, in one transaction. For every
-- date it touches the result equals a computation from scratch.
-- Ties go to the smallest value in byte order (`byte_order`: see warehouse.py).
-- Averages are exact integer sums divided once, so they do not depend on the
-- order rows are summed in (the same value on every rerun and on Redshift).
-- avg_popularity averages the plays whose song popularity is known (NULL when
-- none is).
{%- if backend == 'postgres' %}
-- The recompute reads the fact table for these dates only; fresh statistics
-- on them let the planner use the key's listen_date prefix.
ANALYZE kpi_dirty_dates;
{%- endif %}
DELETE FROM genre_kpis WHERE listen_date IN (SELECT listen_date FROM kpi_dirty_dates);
DELETE FROM hourly_kpis WHERE listen_date IN (SELECT listen_date FROM kpi_dirty_dates);

DROP TABLE IF EXISTS tmp_kpi_plays;
CREATE TEMP TABLE tmp_kpi_plays AS
SELECT p.listen_date, p.listen_hour, p.user_id, p.track_id,
       s.track_genre, s.artists, s.popularity, s.duration_ms
FROM streams p
JOIN songs s ON s.track_id = p.track_id
WHERE p.listen_date IN (SELECT listen_date FROM kpi_dirty_dates);

INSERT INTO genre_kpis
    (listen_date, track_genre, total_plays, unique_listeners, avg_popularity, avg_duration_sec, top_track_id)
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
  ON leading_track.listen_date = g.listen_date AND leading_track.track_genre = g.track_genre AND leading_track.pick = 1;

INSERT INTO hourly_kpis
    (listen_date, listen_hour, unique_listeners, total_plays, unique_tracks, track_diversity_index, top_artist)
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
     AND leading_artist.pick = 1;

DELETE FROM kpi_dirty_dates;
