-- genre_kpis of the dirty dates, from tmp_kpi_plays (see refresh_kpis.sql):
-- one SELECT, its columns in the order of genre_kpis.yaml.
-- Averages are exact integer sums divided once, so a rerun gives the same
-- bits on either backend; avg_popularity averages the plays whose song
-- popularity is known.
{% from 'kpis/_most_played.sql' import join_most_played with context -%}
SELECT g.listen_date, g.track_genre, g.total_plays, u.unique_listeners,
       g.avg_popularity, g.avg_duration_sec, leading_track.track_id
FROM (
    SELECT listen_date, track_genre,
           COUNT(*) AS total_plays,
           CAST(SUM(popularity) AS DOUBLE PRECISION) / NULLIF(COUNT(popularity), 0) AS avg_popularity,
           CAST(SUM(duration_ms) AS DOUBLE PRECISION) / (1000 * COUNT(*)) AS avg_duration_sec
    FROM tmp_kpi_plays
    GROUP BY listen_date, track_genre
) g
-- Distinct listeners as a count of groups (a hash aggregate), not COUNT(DISTINCT),
-- which PostgreSQL answers by sorting every play.
JOIN (
    SELECT listen_date, track_genre, COUNT(*) AS unique_listeners
    FROM (SELECT DISTINCT listen_date, track_genre, user_id FROM tmp_kpi_plays) per_listener
    GROUP BY listen_date, track_genre
) u ON u.listen_date = g.listen_date AND u.track_genre = g.track_genre
{{ join_most_played('track_id', ['listen_date', 'track_genre'], 'leading_track', 'g') }}
