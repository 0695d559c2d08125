"""The few calls of Airflow 3's public REST API (v2) that `make up` and `make run`
need, present in Airflow 3.0 (Amazon MWAA) and later. Standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class AirflowAPIError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


class AirflowClient:
    """A logged-in client: a JWT from the simple auth manager's POST /auth/token."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        token = self._call("POST", "/auth/token", {"username": username, "password": password}, auth=False)
        self._token = token["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, *, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            raise AirflowAPIError(method, path, error.code, error.read().decode("utf-8", "replace")) from None
        return json.loads(text) if text else None

    def dag(self, dag_id: str) -> dict:
        return self._call("GET", f"/api/v2/dags/{_q(dag_id)}")

    def import_errors(self) -> list[dict]:
        return self._call("GET", "/api/v2/importErrors?limit=100")["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/api/v2/dags/{_q(dag_id)}?update_mask=is_paused", {"is_paused": paused})

    def trigger(self, dag_id: str) -> dict:
        # logical_date is a required key in 3.0; null means "now", as the UI's trigger does.
        return self._call("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", {"logical_date": None})

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        found: list[dict] = []
        while True:
            page = self._call(
                "GET",
                f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances?limit=100&offset={len(found)}",
            )
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def is_answering(url: str, timeout: float = 2.0) -> bool:
    """True when an HTTP server answers url with 2xx (the api-server's health endpoint)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
