-- Warehouse tables, created if absent (idempotent). Column lists must agree
-- with include/schemas/*.yaml: tests/test_schemas_ddl.py checks it.
-- Redshift-only clauses (DISTSTYLE, DISTKEY, SORTKEY) and PostgreSQL-only
-- indexes are templated on `backend`; see docs/warehouse-design.md.

-- Dimensions: small, copied to every Redshift node. Age, country, popularity
-- and the explicit flag may be unknown when users and tracks come from an
-- operational database that lacks them (docs/metadata-sources.md).
CREATE TABLE IF NOT EXISTS users (
    user_id BIGINT NOT NULL,
    user_name VARCHAR(256) NOT NULL,
    user_age INTEGER,
    user_country VARCHAR(256),
    created_at DATE NOT NULL,
    PRIMARY KEY (user_id)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (user_id){% endif %};

CREATE TABLE IF NOT EXISTS songs (
    track_id VARCHAR(256) NOT NULL,
    artists VARCHAR(4096) NOT NULL,
    album_name VARCHAR(4096),
    track_name VARCHAR(4096),
    popularity INTEGER,
    duration_ms BIGINT NOT NULL,
    "explicit" BOOLEAN,
    track_genre VARCHAR(256) NOT NULL,
    danceability DOUBLE PRECISION,
    energy DOUBLE PRECISION,
    key DOUBLE PRECISION,
    loudness DOUBLE PRECISION,
    mode DOUBLE PRECISION,
    speechiness DOUBLE PRECISION,
    acousticness DOUBLE PRECISION,
    instrumentalness DOUBLE PRECISION,
    liveness DOUBLE PRECISION,
    valence DOUBLE PRECISION,
    tempo DOUBLE PRECISION,
    time_signature DOUBLE PRECISION,
    duration_sec DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (track_id)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (track_id){% endif %};

-- The fact table: one row per play, unique on (user_id, track_id, listen_time).
CREATE TABLE IF NOT EXISTS streams (
    user_id BIGINT NOT NULL,
    track_id VARCHAR(256) NOT NULL,
    listen_time TIMESTAMP NOT NULL,
    listen_date DATE NOT NULL,
    listen_hour SMALLINT NOT NULL,
    PRIMARY KEY (user_id, track_id, listen_time)
){% if backend == 'redshift' %} DISTKEY (user_id) COMPOUND SORTKEY (listen_date, listen_hour, user_id){% endif %};

-- Plays whose user or track is not in the warehouse yet; retried every run.
CREATE TABLE IF NOT EXISTS streams_parked (
    user_id BIGINT NOT NULL,
    track_id VARCHAR(256) NOT NULL,
    listen_time TIMESTAMP NOT NULL,
    listen_date DATE NOT NULL,
    listen_hour SMALLINT NOT NULL,
    parked_batch_id VARCHAR(32) NOT NULL,
    PRIMARY KEY (user_id, track_id, listen_time)
){% if backend == 'redshift' %} DISTKEY (user_id) SORTKEY (user_id){% endif %};

-- Staging: what COPY loads, by position, from transformed Parquet. The last
-- two columns say which raw file version and row each staged row came from.
CREATE TABLE IF NOT EXISTS stg_users (
    user_id BIGINT,
    user_name VARCHAR(256),
    user_age INTEGER,
    user_country VARCHAR(256),
    created_at DATE,
    file_id VARCHAR(32) NOT NULL,
    source_row BIGINT NOT NULL
){% if backend == 'redshift' %} DISTSTYLE EVEN{% endif %};

CREATE TABLE IF NOT EXISTS stg_songs (
    track_id VARCHAR(256),
    artists VARCHAR(4096),
    album_name VARCHAR(4096),
    track_name VARCHAR(4096),
    popularity INTEGER,
    duration_ms BIGINT,
    "explicit" BOOLEAN,
    track_genre VARCHAR(256),
    danceability DOUBLE PRECISION,
    energy DOUBLE PRECISION,
    key DOUBLE PRECISION,
    loudness DOUBLE PRECISION,
    mode DOUBLE PRECISION,
    speechiness DOUBLE PRECISION,
    acousticness DOUBLE PRECISION,
    instrumentalness DOUBLE PRECISION,
    liveness DOUBLE PRECISION,
    valence DOUBLE PRECISION,
    tempo DOUBLE PRECISION,
    time_signature DOUBLE PRECISION,
    duration_sec DOUBLE PRECISION,
    file_id VARCHAR(32) NOT NULL,
    source_row BIGINT NOT NULL
){% if backend == 'redshift' %} DISTSTYLE EVEN{% endif %};

CREATE TABLE IF NOT EXISTS stg_streams (
    user_id BIGINT,
    track_id VARCHAR(256),
    listen_time TIMESTAMP,
    listen_date DATE,
    listen_hour SMALLINT,
    file_id VARCHAR(32) NOT NULL,
    source_row BIGINT NOT NULL
){% if backend == 'redshift' %} DISTKEY (user_id){% endif %};

-- One row per raw file a batch saw (the batch manifest), COPYed like the data.
CREATE TABLE IF NOT EXISTS stg_files (
    batch_id VARCHAR(32) NOT NULL,
    file_id VARCHAR(32) NOT NULL,
    dataset VARCHAR(16) NOT NULL,
    raw_key VARCHAR(1024) NOT NULL,
    etag VARCHAR(128) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    reason VARCHAR(4096),
    rows_read BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- Every raw file version ever processed, loaded or rejected: it is never
-- processed again. Written in the same transaction as the file's rows.
CREATE TABLE IF NOT EXISTS etl_file_ledger (
    file_id VARCHAR(32) NOT NULL,
    dataset VARCHAR(16) NOT NULL,
    raw_key VARCHAR(1024) NOT NULL,
    etag VARCHAR(128) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    reason VARCHAR(4096),
    rows_read BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    batch_id VARCHAR(32) NOT NULL,
    recorded_at TIMESTAMP DEFAULT {{ now }} NOT NULL,
    PRIMARY KEY (file_id)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- What each batch did with each file it saw (loaded, rejected or skipped).
CREATE TABLE IF NOT EXISTS etl_batch_files (
    batch_id VARCHAR(32) NOT NULL,
    file_id VARCHAR(32) NOT NULL,
    dataset VARCHAR(16) NOT NULL,
    raw_key VARCHAR(1024) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    reason VARCHAR(4096),
    rows_read BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    recorded_at TIMESTAMP DEFAULT {{ now }} NOT NULL,
    PRIMARY KEY (batch_id, file_id)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- What each batch did with stream rows (written with the plays, same transaction).
CREATE TABLE IF NOT EXISTS etl_batches (
    batch_id VARCHAR(32) NOT NULL,
    stream_rows BIGINT NOT NULL,
    streams_loaded BIGINT NOT NULL,
    streams_parked BIGINT NOT NULL,
    stream_repeats_skipped BIGINT NOT NULL,
    recorded_at TIMESTAMP DEFAULT {{ now }} NOT NULL,
    PRIMARY KEY (batch_id)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- Dates whose KPIs must be recomputed; filled with the change, emptied by the recompute.
CREATE TABLE IF NOT EXISTS kpi_dirty_dates (
    listen_date DATE NOT NULL,
    PRIMARY KEY (listen_date)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

CREATE TABLE IF NOT EXISTS genre_kpis (
    listen_date DATE NOT NULL,
    track_genre VARCHAR(256) NOT NULL,
    total_plays BIGINT NOT NULL,
    unique_listeners BIGINT NOT NULL,
    avg_popularity DOUBLE PRECISION,  -- NULL when no play's song popularity is known
    avg_duration_sec DOUBLE PRECISION NOT NULL,
    top_track_id VARCHAR(256) NOT NULL,
    PRIMARY KEY (listen_date, track_genre)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (listen_date){% endif %};

CREATE TABLE IF NOT EXISTS hourly_kpis (
    listen_date DATE NOT NULL,
    listen_hour SMALLINT NOT NULL,
    unique_listeners BIGINT NOT NULL,
    total_plays BIGINT NOT NULL,
    unique_tracks BIGINT NOT NULL,
    track_diversity_index DOUBLE PRECISION NOT NULL,
    top_artist VARCHAR(4096) NOT NULL,
    PRIMARY KEY (listen_date, listen_hour)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (listen_date){% endif %};
{% if backend == 'postgres' %}

-- PostgreSQL indexes for the incremental steps (Redshift relies on sort keys).
CREATE INDEX IF NOT EXISTS streams_listen_date_idx ON streams (listen_date);
CREATE INDEX IF NOT EXISTS streams_track_id_idx ON streams (track_id);
CREATE INDEX IF NOT EXISTS stg_users_file_idx ON stg_users (file_id);
CREATE INDEX IF NOT EXISTS stg_songs_file_idx ON stg_songs (file_id);
CREATE INDEX IF NOT EXISTS stg_streams_file_idx ON stg_streams (file_id);
CREATE INDEX IF NOT EXISTS stg_files_batch_idx ON stg_files (batch_id);
{% endif %}
