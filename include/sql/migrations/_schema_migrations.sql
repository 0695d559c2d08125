-- The warehouse's schema version: one row per migration applied, written in
-- the migration's own transaction (include/music_kpis/migrations.py).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER{{ raw }} NOT NULL,
    name VARCHAR(256){{ zstd }} NOT NULL,
    applied_at TIMESTAMP DEFAULT {{ now }}{{ az64 }} NOT NULL,
    PRIMARY KEY (version)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (version){% endif %};
