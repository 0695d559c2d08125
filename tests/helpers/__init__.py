"""Helpers shared by the test tiers: the DAG and its SQL as tests see them, the KPI oracle."""
