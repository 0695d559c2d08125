-- The operational database's tables as the local stack seeds them (an RDS
-- PostgreSQL in production is the application's own). Idempotent. Durations
-- are in seconds; updated_at moves whenever a row changes.
CREATE TABLE IF NOT EXISTS users (
    user_id BIGINT PRIMARY KEY,
    username TEXT NOT NULL,
    age INTEGER,
    country TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tracks (
    track_id TEXT PRIMARY KEY,
    title TEXT,
    artist TEXT NOT NULL,
    album TEXT,
    genre TEXT NOT NULL,
    duration NUMERIC(12, 3) NOT NULL,
    popularity INTEGER,
    explicit BOOLEAN,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
