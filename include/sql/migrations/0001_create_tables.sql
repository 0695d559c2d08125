-- Version 1: the warehouse tables as they stood when schema versions began.
-- Created if absent, so a warehouse made before versioning is adopted as it
-- is; later migrations bring it to date. Like every applied migration it is
-- frozen: a new warehouse is made from include/sql/schema.sql instead.
-- Redshift-only clauses (DISTSTYLE, DISTKEY, SORTKEY, and the ENCODE macros
-- az64, zstd and raw) and PostgreSQL-only indexes are templated on `backend`;
-- see docs/warehouse-design.md.

-- Dimensions: small, copied to every Redshift node. Age, country, popularity
-- and the explicit flag may be unknown when users and tracks come from an
-- operational database that lacks them (docs/metadata-sources.md).
CREATE TABLE IF NOT EXISTS users ({% with staging = false %}{% include 'migrations/_users_columns.sql' %}{% endwith %},
    PRIMARY KEY (user_id)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (user_id){% endif %};

CREATE TABLE IF NOT EXISTS songs ({% with staging = false %}{% include 'migrations/_songs_columns.sql' %}{% endwith %},
    PRIMARY KEY (track_id)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (track_id){% endif %};

-- The fact table: one row per play, unique on (user_id, track_id, listen_time).
-- listen_date is derived from listen_time, so leading the key with it keeps
-- that uniqueness while a batch's key lookups and index inserts stay within
-- the batch's dates (see docs/warehouse-design.md).
CREATE TABLE IF NOT EXISTS streams ({% with staging = false, sort_column = 'listen_date' %}{% include 'migrations/_play_columns.sql' %}{% endwith %},
    PRIMARY KEY (listen_date, user_id, track_id, listen_time)
){% if backend == 'redshift' %} DISTKEY (user_id) COMPOUND SORTKEY (listen_date, listen_hour, user_id){% endif %};

-- Plays whose user or track is not in the warehouse yet; retried every run.
CREATE TABLE IF NOT EXISTS streams_parked ({% with staging = false, sort_column = 'user_id' %}{% include 'migrations/_play_columns.sql' %}{% endwith %},
    parked_batch_id VARCHAR(32){{ zstd }} NOT NULL,
    PRIMARY KEY (user_id, track_id, listen_time)
){% if backend == 'redshift' %} DISTKEY (user_id) SORTKEY (user_id){% endif %};

-- Staging: what COPY loads, by position, from transformed Parquet. The last
-- two columns say which raw file version and row each staged row came from.
CREATE TABLE IF NOT EXISTS stg_users ({% with staging = true %}{% include 'migrations/_users_columns.sql' %}{% endwith %},
    file_id VARCHAR(32){{ zstd }} NOT NULL,
    source_row BIGINT{{ az64 }} NOT NULL
){% if backend == 'redshift' %} DISTSTYLE EVEN{% endif %};

CREATE TABLE IF NOT EXISTS stg_songs ({% with staging = true %}{% include 'migrations/_songs_columns.sql' %}{% endwith %},
    file_id VARCHAR(32){{ zstd }} NOT NULL,
    source_row BIGINT{{ az64 }} NOT NULL
){% if backend == 'redshift' %} DISTSTYLE EVEN{% endif %};

CREATE TABLE IF NOT EXISTS stg_streams ({% with staging = true, sort_column = none %}{% include 'migrations/_play_columns.sql' %}{% endwith %},
    file_id VARCHAR(32){{ zstd }} NOT NULL,
    source_row BIGINT{{ az64 }} NOT NULL
){% if backend == 'redshift' %} DISTKEY (user_id){% endif %};

{% include 'migrations/_bookkeeping_tables.sql' %}

{% if backend == 'postgres' %}

-- PostgreSQL indexes for the incremental steps (Redshift relies on sort keys).
-- The primary key serves the repeat check and the KPI recompute (it leads with
-- listen_date); the track_id index finds the dates with plays of changed songs.
CREATE INDEX IF NOT EXISTS streams_track_id_idx ON streams (track_id);
CREATE INDEX IF NOT EXISTS stg_users_file_idx ON stg_users (file_id);
CREATE INDEX IF NOT EXISTS stg_songs_file_idx ON stg_songs (file_id);
CREATE INDEX IF NOT EXISTS stg_streams_file_idx ON stg_streams (file_id);
CREATE INDEX IF NOT EXISTS stg_files_batch_idx ON stg_files (batch_id);
{% endif %}
