-- hourly_kpis of the dirty dates, from tmp_kpi_plays (see refresh_kpis.sql):
-- one SELECT, its columns in the order of hourly_kpis.yaml.
{% from 'kpis/_most_played.sql' import join_most_played with context -%}
SELECT h.listen_date, h.listen_hour, h.unique_listeners, h.total_plays, h.unique_tracks,
       CAST(h.unique_tracks AS DOUBLE PRECISION) / h.total_plays, leading_artist.artists
FROM (
    -- Distinct counts as counts of groups (hash aggregates over the plays),
    -- not COUNT(DISTINCT), which PostgreSQL answers by sorting every play.
    SELECT l.listen_date, l.listen_hour, l.unique_listeners, l.total_plays, t.unique_tracks
    FROM (
        SELECT listen_date, listen_hour, COUNT(*) AS unique_listeners, CAST(SUM(plays) AS BIGINT) AS total_plays
        FROM (
            SELECT listen_date, listen_hour, user_id, COUNT(*) AS plays
            FROM tmp_kpi_plays
            GROUP BY listen_date, listen_hour, user_id
        ) per_listener
        GROUP BY listen_date, listen_hour
    ) l
    JOIN (
        SELECT listen_date, listen_hour, COUNT(*) AS unique_tracks
        FROM (SELECT DISTINCT listen_date, listen_hour, track_id FROM tmp_kpi_plays) per_track
        GROUP BY listen_date, listen_hour
    ) t ON t.listen_date = l.listen_date AND t.listen_hour = l.listen_hour
) h
{{ join_most_played('artists', ['listen_date', 'listen_hour'], 'leading_artist', 'h') }}
