"""Local tooling, never deployed: MWAA and Astro get dags/ and include/ only.

`make demo` (demo.py: the DAG through dag.test()), `make up`/`run`/`down` (a real
Airflow without Docker: stack.py, run.py, airflow_client.py, processes.py), the
embedded PostgreSQL and S3 stand-in (local_stack.py), sample data and the seeding
of the operational source database.
"""
