"""Local tooling, never deployed: the embedded stack, `make demo`, sample data and seeding.

What runs in Airflow lives in include/ and dags/; this package only starts
the local stand-ins for AWS and drives the DAG on them.
"""
