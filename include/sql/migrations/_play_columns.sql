{#- The columns of one play: streams, streams_parked and stg_streams (staging =
    true: nothing NOT NULL). The column named `sort_column`, the first of the
    table's sort key, stays uncompressed (RAW) on Redshift. Frozen as of
    version 1, used by 0001 (schema.sql renders them from streams.yaml). #}
{%- set not_null = '' if staging else ' NOT NULL' %}
    user_id BIGINT{{ raw if sort_column == 'user_id' else az64 }}{{ not_null }},
    track_id VARCHAR(256){{ zstd }}{{ not_null }},
    listen_time TIMESTAMP{{ az64 }}{{ not_null }},
    listen_date DATE{{ raw if sort_column == 'listen_date' else az64 }}{{ not_null }},
    listen_hour SMALLINT{{ az64 }}{{ not_null }}