{#- The columns of users (staging = false) or of stg_users before its lineage
    columns (staging = true: nothing NOT NULL), as of version 3, for 0001 and
    0003 (frozen, like _play_columns.sql). #}
{%- set not_null = '' if staging else ' NOT NULL' %}
    user_id BIGINT{{ az64 if staging else raw }}{{ not_null }},
    user_name VARCHAR(256){{ zstd }}{{ not_null }},
    user_age INTEGER{{ az64 }},
    user_country VARCHAR(256){{ zstd }},
    created_at DATE{{ az64 }}{{ not_null }}
