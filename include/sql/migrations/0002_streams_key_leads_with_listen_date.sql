-- Version 2: the fact table's key leads with listen_date, so a batch's key
-- lookups and index inserts stay within the batch's dates. On PostgreSQL the
-- key is an index, rebuilt once for warehouses made before the change. On
-- Redshift primary keys are informational only (nothing to rebuild): the sort
-- key does that work (docs/warehouse-design.md).
{% if backend == 'postgres' %}
DO $$
DECLARE
    pkey record;
BEGIN
    SELECT conname, pg_get_constraintdef(oid) AS def INTO pkey
    FROM pg_constraint WHERE conrelid = 'streams'::regclass AND contype = 'p';
    IF pkey.def <> 'PRIMARY KEY (listen_date, user_id, track_id, listen_time)' THEN
        EXECUTE format(
            'ALTER TABLE streams DROP CONSTRAINT %I, ADD PRIMARY KEY (listen_date, user_id, track_id, listen_time)',
            pkey.conname);
    END IF;
END
$$;

DROP INDEX IF EXISTS streams_listen_date_idx;
{% endif %}
