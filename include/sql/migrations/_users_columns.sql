{#- The columns of users (staging = false) or of stg_users before its lineage
    columns (staging = true: nothing NOT NULL, no sort key column). Frozen as
    of version 3, used by 0001 and 0003: a later change to users gets a partial
    of its own, so that applied migrations keep meaning what they meant
    (schema.sql renders the current columns from the schema YAML). #}
{%- set not_null = '' if staging else ' NOT NULL' %}
    user_id BIGINT{{ az64 if staging else raw }}{{ not_null }},
    user_name VARCHAR(256){{ zstd }}{{ not_null }},
    user_age INTEGER{{ az64 }},
    user_country VARCHAR(256){{ zstd }},
    created_at DATE{{ az64 }}{{ not_null }}
