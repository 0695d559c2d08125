-- For each hour of the day, the artist that led it (hourly_kpis.top_artist) on the most
-- dates; ties go to the smallest name in byte order.
SELECT listen_hour, top_artist, dates_on_top
FROM (
    SELECT listen_hour, top_artist, dates_on_top,
           ROW_NUMBER() OVER (PARTITION BY listen_hour ORDER BY dates_on_top DESC, top_artist {{ byte_order }}) AS pick
    FROM (
        SELECT listen_hour, top_artist, COUNT(*) AS dates_on_top
        FROM hourly_kpis
        GROUP BY listen_hour, top_artist
    ) per_artist
) ranked
WHERE pick = 1
ORDER BY listen_hour
