-- Version 3: age, country, popularity and the explicit flag may be unknown
-- (users and tracks from an operational database that lacks them). Redshift
-- cannot drop NOT NULL from a column ("ALTER TABLE" in the Redshift Database
-- Developer Guide), so each table is rebuilt by a deep copy (create, insert,
-- drop, rename: "Performing a deep copy"), keeping its column order, keys and
-- encodings; every earlier version had the same column order. The same
-- statements run on PostgreSQL, so the local tests run what Redshift runs.
-- One transaction: a failure leaves the tables as they were.
{%- for table, key in [('users', 'user_id'), ('songs', 'track_id')] %}

CREATE TABLE {{ table }}_v3 ({% with staging = false %}{% include 'migrations/_' ~ table ~ '_columns.sql' %}{% endwith %},
    PRIMARY KEY ({{ key }})
){% if backend == 'redshift' %} DISTSTYLE ALL SORTKEY ({{ key }}){% endif %};

INSERT INTO {{ table }}_v3
SELECT * FROM {{ table }};

DROP TABLE {{ table }};

ALTER TABLE {{ table }}_v3 RENAME TO {{ table }};
{%- endfor %}
