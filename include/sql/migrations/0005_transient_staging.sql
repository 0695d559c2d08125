-- Version 5: staging is transient, and on PostgreSQL it is now stored that way.
-- Each run fills it from the processed Parquet and record_batch empties it, so
-- it is written without WAL (UNLOGGED) and without the file_id indexes: every
-- step reads the whole of staging (one batch), so those indexes only slowed
-- COPY down. The four staging tables change together: a crash empties them
-- together, and the files they held, not in the ledger yet, are staged again
-- by the next run (docs/warehouse-design.md). Redshift has neither WAL nor
-- indexes: nothing changes there.
{% if backend == 'postgres' %}
DROP INDEX IF EXISTS stg_users_file_idx;
DROP INDEX IF EXISTS stg_songs_file_idx;
DROP INDEX IF EXISTS stg_streams_file_idx;
ALTER TABLE stg_files SET UNLOGGED;
ALTER TABLE stg_users SET UNLOGGED;
ALTER TABLE stg_songs SET UNLOGGED;
ALTER TABLE stg_streams SET UNLOGGED;
{% endif %}
