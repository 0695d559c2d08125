"""Deployment tooling (not part of what Airflow runs)."""
