-- hourly_kpis of the dirty dates, from tmp_kpi_plays (see refresh_kpis.sql):
-- one SELECT, its columns in the order of hourly_kpis.yaml.
{% from 'kpis/_most_played.sql' import join_most_played with context -%}
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
{{ join_most_played('artists', ['listen_date', 'listen_hour'], 'leading_artist', 'h') }}
