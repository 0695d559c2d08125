{#- The columns of songs (staging = false) or of stg_songs before its lineage
    columns (staging = true: nothing NOT NULL), as of version 3, for 0001 and
    0003 (frozen, like _play_columns.sql). #}
{%- set not_null = '' if staging else ' NOT NULL' %}
    track_id VARCHAR(256){{ zstd if staging else raw }}{{ not_null }},
    artists VARCHAR(4096){{ zstd }}{{ not_null }},
    album_name VARCHAR(4096){{ zstd }},
    track_name VARCHAR(4096){{ zstd }},
    popularity INTEGER{{ az64 }},
    duration_ms BIGINT{{ az64 }}{{ not_null }},
    "explicit" BOOLEAN{{ zstd }},
    track_genre VARCHAR(256){{ zstd }}{{ not_null }},
{%- for feature in ['danceability', 'energy', 'key', 'loudness', 'mode', 'speechiness', 'acousticness',
                    'instrumentalness', 'liveness', 'valence', 'tempo', 'time_signature'] %}
    {{ feature }} DOUBLE PRECISION{{ zstd }},
{%- endfor %}
    duration_sec DOUBLE PRECISION{{ zstd }}{{ not_null }}
