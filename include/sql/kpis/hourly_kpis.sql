-- hourly_kpis of the dirty dates (see refresh_kpis.sql): one SELECT, its
-- columns in the order of hourly_kpis.yaml. Plays, tracks and the leading
-- artist come from tmp_kpi_track_hours (plays per date, hour and track); only
-- the listeners need the plays themselves.
{% from 'kpis/_most_played.sql' import join_most_played with context -%}
SELECT h.listen_date, h.listen_hour, h.unique_listeners, h.total_plays, h.unique_tracks,
       CAST(h.unique_tracks AS DOUBLE PRECISION) / h.total_plays, leading_artist.artists
FROM (
    -- Distinct counts as counts of groups (hash aggregates), not COUNT(DISTINCT),
    -- which PostgreSQL answers by sorting.
    SELECT l.listen_date, l.listen_hour, l.unique_listeners, t.total_plays, t.unique_tracks
    FROM (
        -- The plays whose song is known, as tmp_kpi_track_hours counts them.
        SELECT listen_date, listen_hour, COUNT(*) AS unique_listeners
        FROM (
            SELECT DISTINCT p.listen_date, p.listen_hour, p.user_id
            FROM streams p
            WHERE p.listen_date IN (SELECT listen_date FROM kpi_dirty_dates)
              AND EXISTS (SELECT 1 FROM songs s WHERE s.track_id = p.track_id)
        ) per_listener
        GROUP BY listen_date, listen_hour
    ) l
    JOIN (
        -- tmp_kpi_track_hours has one row per (date, hour, track): its rows are the tracks.
        SELECT listen_date, listen_hour, CAST(SUM(plays) AS BIGINT) AS total_plays, COUNT(*) AS unique_tracks
        FROM tmp_kpi_track_hours
        GROUP BY listen_date, listen_hour
    ) t ON t.listen_date = l.listen_date AND t.listen_hour = l.listen_hour
) h
{{ join_most_played('artists', ['listen_date', 'listen_hour'], 'leading_artist', 'h') }}
