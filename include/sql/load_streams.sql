-- Append the batch's plays to the fact table, in one transaction. A play is
-- loaded at most once (repeats within a file, across files and across runs
-- are skipped); a play whose user or track is unknown is parked and retried
-- by every later run until both exist.
{%- set dataset = 'streams' %}
{%- set batch = batch_id_for(run_id) %}
{%- set play = warehouse_columns('streams') | join(', ') %}
{#- The play columns in the fact key's order (schema.sql), the date last: sorted
    so, the candidates come out in the key's order while nearly every comparison
    ends at the time (the date, shared by a whole day of plays, would not end any). #}
{%- set play_key = fact_key()[1:] %}
{%- set candidate = play_key + (warehouse_columns('streams') | reject('in', play_key) | list) %}
{#- Redshift: the batch's plays are distributed like the fact table, so the
    repeat check and the append join slice-locally. #}
{%- set by_user = ' DISTKEY (user_id)' if backend == 'redshift' else '' %}

{% include '_batch_files.sql' %}

-- Candidates: the batch's plays and every parked play, once each. On
-- PostgreSQL in the fact key's order, which the sort that finds the repeats
-- gives for nothing and the candidates keep until they are appended: new index
-- entries then land page after page within the batch's dates, not at random,
-- and a first load's key index is built from rows already in its order.
-- Each says whether its user and song are known (hash joins to the dimensions
-- while the plays are read anyway), so the unknown ones are found without
-- another pass over the batch.
{%- macro known(alias) -%}
LEFT JOIN users u ON u.user_id = {{ alias }}.user_id
LEFT JOIN songs g ON g.track_id = {{ alias }}.track_id
{%- endmacro %}
{%- set is_known = 'CASE WHEN u.user_id IS NULL OR g.track_id IS NULL THEN FALSE ELSE TRUE END AS known' %}
DROP TABLE IF EXISTS tmp_plays;
CREATE TEMP TABLE tmp_plays{{ by_user }} AS
SELECT {% for c in candidate %}s.{{ c }}, {% endfor %}{{ is_known }}
FROM stg_streams s
JOIN tmp_streams_files f ON f.file_id = s.file_id
{{ known('s') }}
UNION
SELECT {% for c in candidate %}p.{{ c }}, {% endfor %}{{ is_known }}
FROM streams_parked p
{{ known('p') }}
{%- if backend == 'postgres' %}
ORDER BY {{ play_key | join(', ') }}
{%- endif %};

{%- if backend == 'postgres' %}

-- Temp tables have no statistics until analyzed; without them the planner may
-- probe the fact table by a less selective index than its key.
ANALYZE tmp_plays;
{%- endif %}

-- Plays already in the fact table are repeats. The candidates' dates bound
-- what is read of the fact table to the batch's dates, whatever the planner
-- thinks of the join (the sort key's zone maps on Redshift, the primary key's
-- leading column on PostgreSQL), so the cost follows the batch, not the history.
DELETE FROM tmp_plays
USING streams
WHERE streams.listen_date IN (SELECT DISTINCT listen_date FROM tmp_plays)
  AND streams.listen_date = tmp_plays.listen_date
  AND {{ same_key('streams', 'streams', 'tmp_plays') }};

-- The candidates left, counted once per date, song and whether both user and
-- song are known: the one pass over them that the counts, the song play dates
-- and the dirty dates below all read (10k rows for 5M plays).
DROP TABLE IF EXISTS tmp_play_tracks;
CREATE TEMP TABLE tmp_play_tracks AS
SELECT listen_date, track_id, known, COUNT(*) AS plays
FROM tmp_plays
GROUP BY listen_date, track_id, known;

-- Repeats skipped = the batch's rows minus the plays it adds (loaded or newly
-- parked): the candidates left that were not parked already (the others are
-- all the batch's). Every parked play not in the fact table is still a
-- candidate, so those are counted from the parking, which is small, instead
-- of matching every candidate against it. The batch's rows are counted per
-- file, not de-duplicated: a retried COPY may have staged a file more than
-- once, each time whole, so a file counts at most its good rows (read less
-- quarantined, in the manifest).
DROP TABLE IF EXISTS tmp_stream_stats;
CREATE TEMP TABLE tmp_stream_stats AS
SELECT (SELECT COALESCE(SUM(LEAST(per_file.staged, f.rows_read - f.rows_quarantined)), 0)
        FROM (SELECT file_id, COUNT(*) AS staged FROM stg_streams GROUP BY file_id) per_file
        JOIN tmp_streams_files f ON f.file_id = per_file.file_id
       ) AS stream_rows,
       (SELECT COALESCE(SUM(plays), 0) FROM tmp_play_tracks)
       - (SELECT COUNT(*) FROM streams_parked p
          WHERE NOT EXISTS (
                  SELECT 1 FROM streams
                  WHERE streams.listen_date IN (SELECT DISTINCT listen_date FROM streams_parked)
                    AND streams.listen_date = p.listen_date
                    AND {{ same_key('streams', 'streams', 'p') }})
         ) AS new_plays;

-- A candidate whose user or song is unknown is parked (unless it is already).
-- Unknowns are few, so this writes little; the known candidates are the plays
-- to load, read as they are appended: no table of them, no pass deleting the rest.
INSERT INTO streams_parked ({{ play }}, parked_batch_id)
SELECT {{ play }}, '{{ batch }}'
FROM tmp_plays t
WHERE NOT t.known
  AND NOT EXISTS (
        SELECT 1 FROM streams_parked p
        WHERE {{ same_key('streams', 'p', 't') }});

-- The songs' play dates that this batch adds, found in the fact table within
-- the batch's dates (before its plays go in), so the cost follows the batch.
INSERT INTO song_play_dates (track_id, listen_date)
SELECT l.track_id, l.listen_date
FROM tmp_play_tracks l
WHERE l.known
  AND NOT EXISTS (
        SELECT 1 FROM streams s
        WHERE s.listen_date IN (SELECT DISTINCT listen_date FROM tmp_play_tracks)
          AND s.listen_date = l.listen_date
          AND s.track_id = l.track_id);

{%- if backend == 'postgres' %}

-- PostgreSQL, into an empty fact table (a first load): its key's index is
-- dropped and built once after the insert, one sort instead of an index insert
-- per play. The same transaction puts it back, so no reader sees the table
-- without it, and the key is the one the catalog had (nothing restated here).
DROP TABLE IF EXISTS tmp_streams_key;
CREATE TEMP TABLE tmp_streams_key AS
SELECT conname, pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE conrelid = 'streams'::regclass AND contype = 'p'
  AND NOT EXISTS (SELECT 1 FROM streams);

DO $$
DECLARE
    fact_key record;
BEGIN
    FOR fact_key IN SELECT conname FROM tmp_streams_key LOOP
        EXECUTE format('ALTER TABLE streams DROP CONSTRAINT %I', fact_key.conname);
    END LOOP;
END
$$;
{%- endif %}

-- PostgreSQL: in the candidates' order (above). Redshift: in date order, so
-- the appended blocks cover few dates before automatic vacuum sorts them.
INSERT INTO streams ({{ play }})
SELECT {{ play }} FROM tmp_plays
WHERE known
{%- if backend == 'redshift' %}
ORDER BY {{ fact_key() | join(', ') }}
{%- endif %};
{%- if backend == 'postgres' %}

DO $$
DECLARE
    fact_key record;
BEGIN
    FOR fact_key IN SELECT conname, definition FROM tmp_streams_key LOOP
        EXECUTE format('ALTER TABLE streams ADD CONSTRAINT %I %s', fact_key.conname, fact_key.definition);
        -- Statistics of the new rows for the plans that read them next (the KPIs):
        -- until autovacuum comes by, the planner takes the table for empty.
        ANALYZE streams;
    END LOOP;
END
$$;
{%- endif %}

INSERT INTO kpi_dirty_dates (listen_date)
SELECT DISTINCT listen_date FROM tmp_play_tracks
WHERE known
  AND listen_date NOT IN (SELECT listen_date FROM kpi_dirty_dates);

-- Parked plays that loaded leave the parking: each parked play is looked up in
-- the fact table (by its key on PostgreSQL, within the parked dates on
-- Redshift), so this reads as much as the parking holds, not the batch.
-- PostgreSQL gets no date list: with it, once the parking has statistics, the
-- planner may merge-join the parked plays with every play of their dates on
-- the date alone (10M plays: 2.9 s and 29M rows compared, instead of 950 key
-- lookups; bench/incremental.py showed it from the fifth batch on).
DELETE FROM streams_parked
USING streams
WHERE {% if backend == 'redshift' %}streams.listen_date IN (SELECT DISTINCT listen_date FROM streams_parked)
  AND {% endif %}streams.listen_date = streams_parked.listen_date
  AND {{ same_key('streams', 'streams', 'streams_parked') }};

INSERT INTO etl_batches (batch_id, stream_rows, streams_loaded, streams_parked, stream_repeats_skipped)
SELECT '{{ batch }}', stream_rows, (SELECT COALESCE(SUM(plays), 0) FROM tmp_play_tracks WHERE known),
       (SELECT COUNT(*) FROM streams_parked),
       stream_rows - new_plays
FROM tmp_stream_stats
WHERE NOT EXISTS (SELECT 1 FROM etl_batches WHERE batch_id = '{{ batch }}');

{% include '_ledger_loaded.sql' %}
