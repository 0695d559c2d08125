{#- Included by migrations (PostgreSQL only): the fact table's primary key
    becomes `PRIMARY KEY (key)`, rebuilt once, unless it is that already.
    Expects `key` (the columns, comma-separated). -#}
DO $$
DECLARE
    pkey record;
BEGIN
    SELECT conname, pg_get_constraintdef(oid) AS def INTO pkey
    FROM pg_constraint WHERE conrelid = 'streams'::regclass AND contype = 'p';
    IF pkey.def <> 'PRIMARY KEY ({{ key }})' THEN
        EXECUTE format('ALTER TABLE streams DROP CONSTRAINT %I, ADD PRIMARY KEY ({{ key }})', pkey.conname);
    END IF;
END
$$;
