-- What the warehouse holds after a run (run_summary.json).
SELECT
    (SELECT COUNT(*) FROM users) AS users_rows,
    (SELECT COUNT(*) FROM songs) AS songs_rows,
    (SELECT COUNT(*) FROM streams) AS streams_rows,
    (SELECT COUNT(*) FROM streams_parked) AS parked_streams
