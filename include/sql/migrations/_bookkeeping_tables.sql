{#- The batch manifest, the ledger, the batch logs and the dates to recompute,
    as version 1 made them and they still are: included by 0001 and schema.sql.
    Frozen: a change to one of them is a migration, and schema.sql gets the
    new definition of its own. #}
-- One row per raw file a batch saw (the batch manifest), COPYed like the data.
CREATE TABLE IF NOT EXISTS stg_files (
    batch_id VARCHAR(32){{ zstd }} NOT NULL,{% with etag = true %}{% include 'migrations/_file_outcome_columns.sql' %}{% endwith %}
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- Every raw file version ever processed, loaded or rejected: it is never
-- processed again. Written in the same transaction as the file's rows.
CREATE TABLE IF NOT EXISTS etl_file_ledger ({% with etag = true %}{% include 'migrations/_file_outcome_columns.sql' %}{% endwith %},
    batch_id VARCHAR(32){{ zstd }} NOT NULL,
    recorded_at TIMESTAMP DEFAULT {{ now }}{{ az64 }} NOT NULL,
    PRIMARY KEY (file_id)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- What each batch did with each file it saw (loaded, rejected or skipped).
CREATE TABLE IF NOT EXISTS etl_batch_files (
    batch_id VARCHAR(32){{ zstd }} NOT NULL,{% with etag = false %}{% include 'migrations/_file_outcome_columns.sql' %}{% endwith %},
    recorded_at TIMESTAMP DEFAULT {{ now }}{{ az64 }} NOT NULL,
    PRIMARY KEY (batch_id, file_id)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- What each batch did with stream rows (written with the plays, same transaction).
CREATE TABLE IF NOT EXISTS etl_batches (
    batch_id VARCHAR(32){{ zstd }} NOT NULL,
    stream_rows BIGINT{{ az64 }} NOT NULL,
    streams_loaded BIGINT{{ az64 }} NOT NULL,
    streams_parked BIGINT{{ az64 }} NOT NULL,
    stream_repeats_skipped BIGINT{{ az64 }} NOT NULL,
    recorded_at TIMESTAMP DEFAULT {{ now }}{{ az64 }} NOT NULL,
    PRIMARY KEY (batch_id)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};

-- Dates whose KPIs must be recomputed; filled with the change, emptied by the
-- recompute. The KPI tables themselves are made from include/sql/kpis/*.yaml.
CREATE TABLE IF NOT EXISTS kpi_dirty_dates (
    listen_date DATE{{ az64 }} NOT NULL,
    PRIMARY KEY (listen_date)
){% if backend == 'redshift' %} DISTSTYLE ALL{% endif %};
