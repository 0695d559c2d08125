-- The warehouse as this version wants it, made in one go on an empty warehouse;
-- create_tables then records every migration as applied (migrations.py). A
-- warehouse made earlier gets there through include/sql/migrations/ instead,
-- and tests/sql/test_migrations.py proves both roads end in the same schema.
--
-- A dataset's columns, types, VARCHAR lengths and NOT NULL come from its
-- schema YAML (include/schemas/*.yaml, via dataset_columns); this file holds
-- the table design: keys, distribution and sort keys (docs/warehouse-design.md),
-- lineage and bookkeeping tables. Redshift-only clauses and PostgreSQL-only
-- indexes are templated on `backend`. KPI tables are made from their YAML.

-- Dimensions: small, copied to every Redshift node.
{%- for dataset in ['users', 'songs'] %}
{%- set key = key_columns(dataset)[0] %}

CREATE TABLE {{ dataset }} (
    {{ dataset_columns(dataset, sort_column=key) }},
    PRIMARY KEY ("{{ key }}")
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY ("{{ key }}"){% endif %};
{%- endfor %}

-- The fact table: one row per play, unique on its key (the streams schema).
-- listen_date is derived from listen_time, so leading the key with it keeps
-- that uniqueness while a batch's key lookups and index inserts stay within
-- the batch's dates.
CREATE TABLE streams (
    {{ dataset_columns('streams', sort_column='listen_date') }},
    PRIMARY KEY ({{ fact_key() | join(', ') }})
){% if backend == 'redshift' %} DISTKEY (user_id) COMPOUND SORTKEY (listen_date, listen_hour, user_id){% endif %};

-- Plays whose user or track is not in the warehouse yet; retried every run.
CREATE TABLE streams_parked (
    {{ dataset_columns('streams', sort_column='user_id') }},
    parked_batch_id VARCHAR(32){{ zstd }} NOT NULL,
    PRIMARY KEY ({{ key_columns('streams') | join(', ') }})
){% if backend == 'redshift' %} DISTKEY (user_id) SORTKEY (user_id){% endif %};

-- The dates each song was played on, kept by load_streams: a changed song finds
-- the dates to recompute here, reading only its own blocks (sorted by track).
CREATE TABLE song_play_dates (
    {{ dataset_columns('streams', sort_column='track_id', only=['track_id', 'listen_date']) }},
    PRIMARY KEY (track_id, listen_date)
){% if backend == 'redshift' %} DISTKEY (track_id) COMPOUND SORTKEY (track_id, listen_date){% endif %};

-- Staging: what COPY loads, by position, from transformed Parquet. The last
-- two columns say which raw file version and row each staged row came from.
{%- for dataset in ['users', 'songs', 'streams'] %}

CREATE TABLE stg_{{ dataset }} (
    {{ dataset_columns(dataset, staging=true) }},
    file_id VARCHAR(32){{ zstd }} NOT NULL,
    source_row BIGINT{{ az64 }} NOT NULL
){% if backend == 'redshift' %} {{ 'DISTKEY (user_id)' if dataset == 'streams' else 'DISTSTYLE EVEN' }}{% endif %};
{%- endfor %}

{% include 'migrations/_bookkeeping_tables.sql' %}
{%- if backend == 'postgres' %}

-- PostgreSQL: staging is transient, written without WAL; the four tables
-- together, so that a crash empties them together (docs/warehouse-design.md).
-- Each step reads the whole of staging (one batch): no index but the manifest's.
-- Autovacuum leaves it alone: record_batch empties it (migration 7 says why).
{%- for table in ['stg_files', 'stg_users', 'stg_songs', 'stg_streams'] %}
ALTER TABLE {{ table }} SET UNLOGGED;
ALTER TABLE {{ table }} SET (autovacuum_enabled = false);
{%- endfor %}
CREATE INDEX stg_files_batch_idx ON stg_files (batch_id);
{%- endif %}
