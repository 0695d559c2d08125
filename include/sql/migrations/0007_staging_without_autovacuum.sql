-- Version 7: PostgreSQL's autovacuum leaves staging alone. Staging holds one
-- batch and record_batch empties it (TRUNCATE, which takes the table's
-- exclusive lock): an autovacuum still working through the millions of rows a
-- COPY just added is only cancelled after deadlock_timeout (1 s), which every
-- large batch waited for, and its work until then was thrown away with the
-- rows. Redshift has no autovacuum of this kind: nothing changes there.
{% if backend == 'postgres' %}
ALTER TABLE stg_files SET (autovacuum_enabled = false);
ALTER TABLE stg_users SET (autovacuum_enabled = false);
ALTER TABLE stg_songs SET (autovacuum_enabled = false);
ALTER TABLE stg_streams SET (autovacuum_enabled = false);
{% endif %}
