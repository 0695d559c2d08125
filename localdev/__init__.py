"""Local development tooling: a real Airflow (api-server, scheduler, dag-processor,
triggerer) on this machine without Docker. Never deployed: MWAA and Astro get
dags/ and include/ only."""
