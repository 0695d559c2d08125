-- Version 4: the dates each song was played on. A songs batch finds the dates
-- to recompute here instead of joining the fact table by track_id, which on
-- Redshift (no indexes) scanned the whole history on every batch. Sorted by
-- track_id, so the zone maps read only the changed songs' blocks.
-- load_streams.sql adds the pairs of each batch's new plays.
CREATE TABLE song_play_dates (
    track_id VARCHAR(256){{ raw }} NOT NULL,
    listen_date DATE{{ az64 }} NOT NULL,
    PRIMARY KEY (track_id, listen_date)
){% if backend == 'redshift' %} DISTKEY (track_id) COMPOUND SORTKEY (track_id, listen_date){% endif %};

INSERT INTO song_play_dates (track_id, listen_date)
SELECT DISTINCT track_id, listen_date
FROM streams;
{% if backend == 'postgres' %}

-- The index it replaces: nothing else looks plays up by track.
DROP INDEX IF EXISTS streams_track_id_idx;
{% endif %}
