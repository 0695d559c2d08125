-- Version 2: the fact table's key leads with listen_date, so a batch's key
-- lookups and index inserts stay within the batch's dates. On PostgreSQL the
-- key is an index, rebuilt once for warehouses made before the change. On
-- Redshift primary keys are informational only (nothing to rebuild): the sort
-- key does that work (docs/warehouse-design.md).
{% if backend == 'postgres' %}
{% with key = 'listen_date, user_id, track_id, listen_time' %}{% include 'migrations/_streams_primary_key.sql' %}{% endwith %}

DROP INDEX IF EXISTS streams_listen_date_idx;
{% endif %}
