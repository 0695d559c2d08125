-- Version 3: age, country, popularity and the explicit flag may be unknown
-- (users and tracks from an operational database that lacks them). Redshift
-- cannot drop NOT NULL from a column ("ALTER TABLE" in the Redshift Database
-- Developer Guide), so each of the two tables is rebuilt by a deep copy (create, insert, drop, rename: AWS's
-- "Performing a deep copy"), keeping its column order, keys and encodings. The
-- same statements run on PostgreSQL, so the local tests run what Redshift runs.
-- One transaction: a failure leaves the tables as they were.

CREATE TABLE users_v3 (
    user_id BIGINT{{ raw }} NOT NULL,
    user_name VARCHAR(256){{ zstd }} NOT NULL,
    user_age INTEGER{{ az64 }},
    user_country VARCHAR(256){{ zstd }},
    created_at DATE{{ az64 }} NOT NULL,
    PRIMARY KEY (user_id)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (user_id){% endif %};

INSERT INTO users_v3 (user_id, user_name, user_age, user_country, created_at)
SELECT user_id, user_name, user_age, user_country, created_at
FROM users;

DROP TABLE users;

ALTER TABLE users_v3 RENAME TO users;

CREATE TABLE songs_v3 (
    track_id VARCHAR(256){{ raw }} NOT NULL,
    artists VARCHAR(4096){{ zstd }} NOT NULL,
    album_name VARCHAR(4096){{ zstd }},
    track_name VARCHAR(4096){{ zstd }},
    popularity INTEGER{{ az64 }},
    duration_ms BIGINT{{ az64 }} NOT NULL,
    "explicit" BOOLEAN{{ zstd }},
    track_genre VARCHAR(256){{ zstd }} NOT NULL,
    danceability DOUBLE PRECISION{{ zstd }},
    energy DOUBLE PRECISION{{ zstd }},
    key DOUBLE PRECISION{{ zstd }},
    loudness DOUBLE PRECISION{{ zstd }},
    mode DOUBLE PRECISION{{ zstd }},
    speechiness DOUBLE PRECISION{{ zstd }},
    acousticness DOUBLE PRECISION{{ zstd }},
    instrumentalness DOUBLE PRECISION{{ zstd }},
    liveness DOUBLE PRECISION{{ zstd }},
    valence DOUBLE PRECISION{{ zstd }},
    tempo DOUBLE PRECISION{{ zstd }},
    time_signature DOUBLE PRECISION{{ zstd }},
    duration_sec DOUBLE PRECISION{{ zstd }} NOT NULL,
    PRIMARY KEY (track_id)
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY (track_id){% endif %};

INSERT INTO songs_v3 (track_id, artists, album_name, track_name, popularity, duration_ms, "explicit", track_genre, danceability, energy, key, loudness, mode, speechiness, acousticness, instrumentalness, liveness, valence, tempo, time_signature, duration_sec)
SELECT track_id, artists, album_name, track_name, popularity, duration_ms, "explicit", track_genre, danceability, energy, key, loudness, mode, speechiness, acousticness, instrumentalness, liveness, valence, tempo, time_signature, duration_sec
FROM songs;

DROP TABLE songs;

ALTER TABLE songs_v3 RENAME TO songs;
