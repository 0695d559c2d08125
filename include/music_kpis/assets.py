"""The KPI tables as Airflow Assets: refresh_kpis updates them, a downstream DAG can be scheduled on them.

One Asset per KPI table (include/sql/kpis/<table>.yaml), named after the table. The URI names the
table in the pipeline's warehouse rather than a host, which differs between Redshift, the local
PostgreSQL and each environment; a consumer DAG needs only the Asset, not the address.
"""

from __future__ import annotations

from airflow.sdk import Asset

from include.music_kpis.kpis import kpi_tables

ASSET_GROUP = "music_kpis"


def kpi_asset(table: str) -> Asset:
    return Asset(name=table, uri=f"warehouse://music_kpis/{table}", group=ASSET_GROUP)


KPI_ASSETS: tuple[Asset, ...] = tuple(kpi_asset(kpi.name) for kpi in kpi_tables())
