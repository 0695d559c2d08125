-- genre_kpis of the dirty dates (see refresh_kpis.sql): one SELECT, its
-- columns in the order of genre_kpis.yaml. Plays, averages and the leading
-- track come from tmp_kpi_track_hours (plays per date, hour and track), each
-- row weighing its plays; only the listeners need the plays themselves.
-- Averages are exact integer sums divided once, so a rerun gives the same
-- bits on either backend; avg_popularity averages the plays whose song
-- popularity is known.
{% from 'kpis/_most_played.sql' import join_most_played with context -%}
SELECT g.listen_date, g.track_genre, g.total_plays, u.unique_listeners,
       CAST(g.popularity_sum AS DOUBLE PRECISION) / NULLIF(g.popularity_plays, 0),
       CAST(g.duration_ms_sum AS DOUBLE PRECISION) / (1000 * g.total_plays), leading_track.track_id
FROM (
    SELECT listen_date, track_genre,
           CAST(SUM(plays) AS BIGINT) AS total_plays,
           SUM(popularity * plays) AS popularity_sum,
           CAST(SUM(CASE WHEN popularity IS NOT NULL THEN plays ELSE 0 END) AS BIGINT) AS popularity_plays,
           SUM(duration_ms * plays) AS duration_ms_sum
    FROM tmp_kpi_track_hours
    GROUP BY listen_date, track_genre
) g
-- Distinct listeners as a count of groups (a hash aggregate), not COUNT(DISTINCT),
-- which PostgreSQL answers by sorting every play; the plays whose song is known.
JOIN (
    SELECT listen_date, track_genre, COUNT(*) AS unique_listeners
    FROM (
        SELECT DISTINCT p.listen_date, s.track_genre, p.user_id
        FROM streams p
        JOIN songs s ON s.track_id = p.track_id
        WHERE p.listen_date IN (SELECT listen_date FROM kpi_dirty_dates)
    ) per_listener
    GROUP BY listen_date, track_genre
) u ON u.listen_date = g.listen_date AND u.track_genre = g.track_genre
{{ join_most_played('track_id', ['listen_date', 'track_genre'], 'leading_track', 'g') }}
