-- Version 6: the fact table's key orders the play's time second, right after
-- its date: (listen_date, listen_time, user_id, track_id). The same columns,
-- so the same uniqueness; but the time tells nearly every two plays apart, so
-- the sort that finds a batch's repeats, and the key's own index build, end
-- most comparisons at the first column that differs (docs/warehouse-design.md,
-- "First loads"). On PostgreSQL the key is an index, rebuilt once here for
-- warehouses made before the change. On Redshift primary keys are informational
-- only and their column order changes nothing: nothing to do there.
{% if backend == 'postgres' %}
{% with key = 'listen_date, listen_time, user_id, track_id' %}{% include 'migrations/_streams_primary_key.sql' %}{% endwith %}
{% endif %}
