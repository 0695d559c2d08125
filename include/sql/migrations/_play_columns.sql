{#- The columns of one play: streams, streams_parked and stg_streams (staging =
    true: nothing NOT NULL) as of version 1, for 0001. The column named
    `sort_column`, the first of the table's sort key, is RAW on Redshift.
    Frozen, as every partial of an applied migration: a later change gets a
    partial of its own, so that applied migrations keep meaning what they
    meant; schema.sql renders the current columns from the schema YAML. #}
{%- set not_null = '' if staging else ' NOT NULL' %}
    user_id BIGINT{{ raw if sort_column == 'user_id' else az64 }}{{ not_null }},
    track_id VARCHAR(256){{ zstd }}{{ not_null }},
    listen_time TIMESTAMP{{ az64 }}{{ not_null }},
    listen_date DATE{{ raw if sort_column == 'listen_date' else az64 }}{{ not_null }},
    listen_hour SMALLINT{{ az64 }}{{ not_null }}