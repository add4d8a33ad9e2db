"""The few MLflow REST calls the registry mirror needs, on the standard library.

No ``mlflow`` package: the mirror talks to an MLflow tracking server's REST API
(``/api/2.0/mlflow/...``) and uploads artifacts through the server's artifact proxy
(``/api/2.0/mlflow-artifacts/artifacts/...``, on by default since MLflow 2.0's
``--serve-artifacts``), through :class:`sluice.util.http.ApiClient`: timeouts,
retries with backoff on connection errors, 5xx and 429, and masked messages.
Credentials come only from MLflow's own variables (``MLFLOW_TRACKING_TOKEN``, or
``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``), never from sluice.yaml.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.errors import ConfigError, SluiceError
from sluice.util.credentials import embedded_secrets, mask
from sluice.util.http import ApiClient, HttpFailure, RetryPolicy

TRACKING_ENV = "MLFLOW_TRACKING_URI"
API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def tracking_uri(configured: str | None) -> str:
    """`mirror.mlflow.tracking_uri`, else $MLFLOW_TRACKING_URI; an http(s) URL with no secret."""
    uri = configured or os.environ.get(TRACKING_ENV)
    if not uri:
        raise ConfigError("`mirror: mlflow:` has no tracking server",
                          hint=f"set `tracking_uri: http://host:5000` there or {TRACKING_ENV}")
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        raise ConfigError(f"the MLflow tracking URI {mask(uri)} is not an http(s) URL",
                          hint="the mirror talks to an MLflow tracking server's REST API: "
                               "start one with `mlflow server` and give its URL")
    if embedded_secrets(uri):
        raise ConfigError(f"the MLflow tracking URI {mask(uri)} contains a credential",
                          hint="remove it and set MLFLOW_TRACKING_TOKEN, or "
                               "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    return uri.rstrip("/")


def _auth() -> tuple[dict[str, str], tuple[str, ...]]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}, (token,)
    user, password = (os.environ.get("MLFLOW_TRACKING_USERNAME"),
                      os.environ.get("MLFLOW_TRACKING_PASSWORD"))
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}, (password, pair)
    return {}, ()


class MlflowError(SluiceError):
    """The MLflow server refused a request or could not be reached (after retries)."""

    def __init__(self, failure: HttpFailure) -> None:
        self.status = failure.status
        super().__init__(f"MLflow: {failure}",
                         hint="check that the MLflow server is running and reachable, and "
                              "the credentials (MLFLOW_TRACKING_TOKEN or "
                              "MLFLOW_TRACKING_USERNAME/PASSWORD); then `sluice models mirror`")


def tags(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in values.items()]


def tag_dict(entity: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in entity.get("tags", [])}


@dataclass
class MlflowClient:
    """Registered models, versions, aliases, runs and artifact uploads on one server."""

    api: ApiClient

    @classmethod
    def connect(cls, uri: str, retries: int = 3, timeout_s: float = 30.0) -> MlflowClient:
        headers, secrets = _auth()
        return cls(ApiClient(uri, headers, secrets, timeout_s,
                             RetryPolicy(attempts=retries, first_delay_s=0.5, max_delay_s=5.0),
                             user_agent="sluice-mlflow-mirror"))

    def call(self, method: str, path: str, body: Any = None,
             query: dict[str, str | int] | None = None) -> Any:
        try:
            return self.api.request(method, self.api.url(API + path, query), body).data or {}
        except HttpFailure as failure:
            raise MlflowError(failure) from None

    def get_or_none(self, path: str, query: dict[str, str | int]) -> Any:
        """A GET whose 404 (RESOURCE_DOES_NOT_EXIST) is None rather than a failure."""
        try:
            return self.call("GET", path, query=query)
        except MlflowError as error:
            if error.status == 404:
                return None
            raise

    # Registered models and versions.
    def registered_model(self, name: str) -> dict[str, Any] | None:
        found = self.get_or_none("/registered-models/get", {"name": name})
        return None if found is None else dict(found["registered_model"])

    def create_registered_model(self, name: str, values: dict[str, str]) -> None:
        self.call("POST", "/registered-models/create", {"name": name, "tags": tags(values)})

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name`` (all pages)."""
        found: list[dict[str, Any]] = []
        token = ""
        quoted = name.replace("'", "\\'")
        while True:
            query: dict[str, str | int] = {"filter": f"name='{quoted}'", "max_results": 200}
            if token:
                query["page_token"] = token
            page = self.call("GET", "/model-versions/search", query=query)
            found += page.get("model_versions", [])
            token = page.get("next_page_token", "")
            if not token:
                return found

    def create_version(self, name: str, source: str, run_id: str,
                       values: dict[str, str], description: str) -> dict[str, Any]:
        made = self.call("POST", "/model-versions/create",
                         {"name": name, "source": source, "run_id": run_id,
                          "tags": tags(values), "description": description})
        return dict(made["model_version"])

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.call("POST", "/model-versions/set-tag",
                  {"name": name, "version": version, "key": key, "value": value})

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.call("POST", "/registered-models/alias",
                  {"name": name, "alias": alias, "version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        self.call("DELETE", "/registered-models/alias", {"name": name, "alias": alias})

    # Experiments, runs and artifacts.
    def experiment_id(self, name: str) -> str:
        found = self.get_or_none("/experiments/get-by-name", {"experiment_name": name})
        if found is not None:
            return str(found["experiment"]["experiment_id"])
        return str(self.call("POST", "/experiments/create", {"name": name})["experiment_id"])

    def find_run(self, experiment: str, key: str, value: str) -> dict[str, Any] | None:
        """The newest finished run of ``experiment`` whose tag ``key`` is ``value``."""
        quoted = value.replace("'", "\\'")
        found = self.call("POST", "/runs/search", {
            "experiment_ids": [experiment], "max_results": 1, "order_by": ["start_time DESC"],
            "filter": f"tags.`{key}` = '{quoted}' and attributes.status = 'FINISHED'"})
        runs = found.get("runs", [])
        return dict(runs[0]) if runs else None

    def create_run(self, experiment: str, name: str, values: dict[str, str],
                   start_ms: int) -> dict[str, Any]:
        made = self.call("POST", "/runs/create", {"experiment_id": experiment, "run_name": name,
                                                  "start_time": start_ms, "tags": tags(values)})
        return dict(made["run"])

    def log_batch(self, run_id: str, params: dict[str, str], metrics: dict[str, float],
                  values: dict[str, str], at_ms: int) -> None:
        self.call("POST", "/runs/log-batch", {
            "run_id": run_id, "params": tags(params), "tags": tags(values),
            "metrics": [{"key": k, "value": v, "timestamp": at_ms, "step": 0}
                        for k, v in metrics.items()]})

    def finish_run(self, run_id: str, status: str, end_ms: int) -> None:
        self.call("POST", "/runs/update", {"run_id": run_id, "status": status,
                                           "end_time": end_ms})

    def upload(self, artifact_uri: str, rel: str, data: Path) -> None:
        """PUT one file under a run's ``mlflow-artifacts:/…`` root through the proxy."""
        root = urllib.parse.urlsplit(artifact_uri)
        if root.scheme != "mlflow-artifacts":
            raise ConfigError(f"the MLflow server stores artifacts at {artifact_uri}, which "
                              "sluice cannot upload to through the server",
                              hint="start the server with --serve-artifacts (the default) "
                                   "and --artifacts-destination")
        path = urllib.parse.quote(f"{root.path.strip('/')}/{rel}")
        try:
            self.api.request("PUT", self.api.url(f"{ARTIFACTS}/{path}"), raw=data)
        except HttpFailure as failure:
            raise MlflowError(failure) from None
