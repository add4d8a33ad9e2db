"""`sluice ui`'s API and pages through FastAPI's TestClient, over a small registry."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from sluice.db import Database, open_project_database
from sluice.pipeline.ledger import Execution, RunRecord, record_run
from sluice.registry.promotion import promote
from sluice.registry.versions import register
from sluice.ui.app import create_app
from sluice.ui.identities import Identities, add_token, load_tokens
from sluice.workspace.project import Project, load_project

CONFIG = """\
stages:
  train: {cmd: echo hi, kind: train}
budgets:
  weekly: {usd: 10}
promotion:
  staging: {gates: pass}
  production: {gates: pass, after: staging, approvals: 1, distinct_approver: true}
"""
GATES = [{"metric": "roc_auc", "rule": "min 0.6", "slice": None, "verdict": "PASS",
          "point": 0.8, "low": 0.75, "high": 0.85}]


def _run(db: Database, run_id: str, tier: str, at: float, wall: float) -> None:
    record_run(db, RunRecord(run_id, tier, at, wall, "succeeded", "abc123", "main", "ci", 0.5),
               [Execution(run_id, "train", "train", tier, "f" * 8, at, wall, wall, wall, 0.0,
                          None, 1000, 0.5, "ran", 1.0, 0, "abc123", "ci")])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "sluice.yaml").write_text(CONFIG)
    (tmp_path / ".git").mkdir()
    return load_project(tmp_path)


@pytest.fixture
def db(project: Project) -> Database:
    db = open_project_database(project)
    now = time.time()
    for i in range(3):
        _run(db, f"run-{i}", "merge" if i else "pr", now - 100 + i, 2.0 + i)
    for _ in range(3):
        register(db, "churn", artifact_hash="h" * 32, artifact_path="model.pkl",
                 verdict="PASS", lineage={"commit": "abc123", "branch": "main", "run_id": "run-2",
                          "tier": "merge", "data": {"data/x.csv": {"hash": "d" * 32}}},
                 metrics={"roc_auc": 0.8}, gates=GATES, creator="ci")
    promote(db, project.config.spec.promotion, "churn", 1, "staging", "ci", None, "main")
    promote(db, project.config.spec.promotion, "churn", 2, "staging", "ci", None, "main")
    return db


@pytest.fixture
def tokens(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> dict[str, str]:
    path = tmp_path / "tokens.json"
    monkeypatch.setenv("SLUICE_UI_TOKENS", str(path))
    return {name: add_token(path, name) for name in ("alice", "bob")}


def _client(project: Project, db: Database, **kwargs: Any) -> TestClient:
    return TestClient(create_app(project, db, identities=Identities.load(project.state_dir),
                                 **kwargs), raise_server_exceptions=False)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_reads_are_paginated_and_unknowns_are_404s(project: Project, db: Database) -> None:
    client = _client(project, db)
    page = client.get("/api/runs", params={"limit": 2}).json()
    assert [r["run_id"] for r in page["items"]] == ["run-2", "run-1"]
    assert page["total"] == 3 and page["next_offset"] == 2
    assert client.get("/api/runs", params={"limit": 2, "offset": 2}).json()["next_offset"] is None
    assert client.get("/api/runs", params={"limit": 0}).status_code == 400
    run = client.get("/api/runs/run-1").json()
    assert run["executions"][0]["stage"] == "train" and run["report"] is None
    assert client.get("/api/models").json()[0]["aliases"] == {"staging": 2}
    model = client.get("/api/models/churn", params={"limit": 1}).json()
    assert model["versions"]["items"][0]["version"] == 3 and model["versions"]["total"] == 3
    assert [e["to"] for e in model["history"]["items"]] == [2, 1]
    budgets = client.get("/api/budgets").json()
    assert budgets["periods"][0]["name"] == "weekly" and budgets["by_kind"][0]["kind"] == "train"
    assert client.get("/api/overview").json()["latest"][0]["tier"] == "merge"
    for path in ("/api/runs/nope", "/api/models/nope"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.json()["back"] in ("/", "/models")
    for path in ("/runs/nope", "/models/nope"):
        page_404 = client.get(path)
        assert page_404.status_code == 404 and "Traceback" not in page_404.text
        assert 'href="/' in page_404.text
    assert "no model `nope`" in client.get("/models/nope").text
    assert client.get("/api/runs/run-1/../../etc").status_code == 404
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/models/{name}/promote" in docs.text
    assert "cdn" not in docs.text.lower() and "<script" not in docs.text
    assert "/api/runs" in client.get("/openapi.json").json()["paths"]


def test_pages_render_with_svg_charts_and_say_read_only(project: Project, db: Database
                                                        ) -> None:
    client = _client(project, db)
    for path in ("/", "/runs/run-2", "/models", "/models/churn", "/budgets"):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert "Read-only" in page.text and 'method="post"' not in page.text
    import base64

    charts = [base64.b64decode(c).decode() for c in
              re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", client.get("/").text)]
    assert any("weekly: use" in c for c in charts)
    burn = next(c for c in charts if "weekly: usd burn-down" in c)
    assert "<polyline" in burn
    from sluice.ui.queries import cumulative_spend

    now = time.time()
    spent = cumulative_spend(db, now - 7 * 86400, 7, None, "usd", now)
    assert len(spent) == 7 and spent[-1] == pytest.approx(1.5) and spent[0] == 0
    assert cumulative_spend(db, now - 7 * 86400, 7, ["pr"], "usd", now)[-1] == 0.5
    model = client.get("/models/churn").text
    assert "staging" in model and 'href="/runs/run-2"' in model and "dddddddddd" in model
    assert "https://" not in client.get("/").text  # nothing from a CDN


def test_api_writes_need_a_bearer_token_and_keep_the_policy(project: Project, db: Database,
                                                            tokens: dict[str, str]) -> None:
    client = _client(project, db)
    body = {"alias": "production", "version": 2, "reason": "Q4"}
    assert client.post("/api/models/churn/promote", json=body).status_code == 401
    bad = client.post("/api/models/churn/promote", json=body, headers=_bearer("sluice_nope"))
    assert bad.status_code == 401 and "bearer token" in bad.json()["error"]
    opened = client.post("/api/models/churn/promote", json=body,
                         headers=_bearer(tokens["alice"])).json()
    assert opened["moved"] is False and opened["request_id"] == 1
    own = client.post("/api/requests/1/approve", headers=_bearer(tokens["alice"]))
    assert own.status_code == 403 and "may not approve" in own.json()["error"]
    assert client.post("/api/requests/99/approve",
                       headers=_bearer(tokens["bob"])).status_code == 404
    approved = client.post("/api/requests/1/approve", headers=_bearer(tokens["bob"])).json()
    assert approved["moved"] is True and approved["version"] == 2
    refused = client.post("/api/models/churn/promote", json={"alias": "production",
                                                             "version": 3},
                          headers=_bearer(tokens["bob"]))
    assert refused.status_code == 403 and "has not been `staging` yet" in refused.json()["error"]
    back = client.post("/api/models/churn/rollback", json={"alias": "staging"},
                       headers=_bearer(tokens["bob"])).json()
    assert back["version"] == 1 and back["from_version"] == 2
    assert client.post("/api/models/nope/rollback", json={},
                       headers=_bearer(tokens["bob"])).status_code == 404
    client.post("/api/models/churn/promote", json={"alias": "production", "version": 1},
                headers=_bearer(tokens["alice"]))
    rejected = client.post("/api/requests/2/reject", json={"reason": "no"},
                           headers=_bearer(tokens["bob"])).json()
    assert rejected["message"] == "request 2 rejected"
    from sluice.db.read import as_reader

    actors = [(r["actor"], r["action"]) for r in
              as_reader(db).rows("SELECT actor, action FROM audit_log ORDER BY id")]
    assert ("bob", "approve") in actors and ("bob", "rollback") in actors
    assert ("alice", "request") in actors and ("bob", "reject") in actors


def test_read_only_refuses_writes(project: Project, db: Database, tokens: dict[str, str]
                                  ) -> None:
    client = _client(project, db, read_only=True)
    refused = client.post("/api/models/churn/rollback", json={"alias": "staging"},
                          headers=_bearer(tokens["bob"]))
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    assert "started with --read-only" in client.get("/").text


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def test_forms_need_a_session_and_a_csrf_token(project: Project, db: Database,
                                               tokens: dict[str, str]) -> None:
    client = _client(project, db)
    assert client.post("/models/churn/rollback", data={"alias": "staging"},
                       follow_redirects=False).status_code == 401
    wrong = client.post("/signin", data={"token": "sluice_wrong"})
    assert wrong.status_code == 401 and "unknown token" in wrong.text
    signed = client.post("/signin", data={"token": tokens["bob"], "next": "/models/churn"})
    assert signed.status_code == 200 and "signed in as" in signed.text
    csrf = _csrf(signed.text)
    forged = client.post("/models/churn/rollback", data={"alias": "staging", "csrf": "0" * 64})
    assert forged.status_code == 403 and "CSRF" in forged.text
    moved = client.post("/models/churn/rollback", data={"alias": "staging", "csrf": csrf,
                                                        "reason": "latency"})
    assert moved.status_code == 200 and "rolled back: 2 → 1" in moved.text
    assert "rollback by bob: latency" in moved.text
    client.post("/signout")
    assert "signed in as" not in client.get("/models/churn").text


def test_tokens_are_stored_hashed(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    token = add_token(path, "carol")
    assert token not in path.read_text() and load_tokens(path)[0]["name"] == "carol"
    who = Identities(load_tokens(path))
    assert who.by_token(token) == "carol" and who.by_token(token + "x") is None
    cookie = who.session_for("carol")
    assert who.by_session(cookie) == "carol"
    assert who.by_session(cookie.replace("carol", "admin")) is None
    assert who.by_session(cookie, now=time.time() + 13 * 3600) is None


def test_a_trusted_proxy_header_is_an_identity(project: Project, db: Database,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_UI_TRUSTED_HEADER", "X-Forwarded-User")
    client = _client(project, db)
    page = client.get("/models/churn", headers={"X-Forwarded-User": "dave"})
    assert "signed in as" in page.text
    moved = client.post("/models/churn/rollback", headers={"X-Forwarded-User": "dave"},
                        data={"alias": "staging", "csrf": _csrf(page.text)})
    assert "rolled back" in moved.text
    api = client.post("/api/models/churn/rollback", headers={"X-Forwarded-User": "dave"},
                      json={"alias": "staging"})
    assert api.status_code == 401  # the API takes bearer tokens only: no CSRF there


def test_importing_sluice_and_its_cli_never_imports_fastapi() -> None:
    import subprocess
    import sys

    code = ("import sys, sluice, sluice.ui, sluice.ui.identities, sluice.cli.ui_cmd; "
            "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_only_loopback_hosts_are_served_without_identities() -> None:
    from sluice.cli.ui_cmd import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


def test_versions_compare_and_bad_requests_get_clear_errors(project: Project, db: Database
                                                            ) -> None:
    client = _client(project, db)
    compared = client.get("/api/models/churn/compare", params={"a": 1, "b": 2}).json()
    # no stored predictions here: the registered point values, no interval
    assert compared["metrics"] == [{"metric": "roc_auc", "a": 0.8, "b": 0.8, "delta": 0.0,
                                    "low": None, "high": None}]
    assert compared["method"] == "point values"
    missing = client.get("/api/models/churn/compare", params={"a": 1, "b": 9})
    assert missing.status_code == 404 and "has no version 9" in missing.json()["error"]
    page = client.get("/models/churn", params={"a": 1, "b": 3})
    assert page.status_code == 200 and 'id="comparison"' in page.text
    nowhere = client.get("/no/such/page")
    assert nowhere.status_code == 404 and 'href="/"' in nowhere.text
    assert client.get("/api/nothing").json()["error"] == "no such page"
    bad = client.get("/api/runs", params={"limit": "many"})
    assert bad.status_code == 422 and "limit" in bad.json()["error"]
    assert client.get("/api/requests").json() == []


def test_the_run_page_shows_its_stages_log_masked(project: Project, db: Database,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_API_TOKEN", "hunter2-secret-value")
    log = project.log_path("train")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("training\nusing hunter2-secret-value\ndone\n")
    page = _client(project, db).get("/runs/run-2").text
    assert "log of train" in page and "training" in page
    assert "hunter2-secret-value" not in page
    assert "log of train" not in _client(project, db).get("/runs/run-1").text  # not its log


def test_the_link_back_never_leaves_the_site(project: Project, db: Database) -> None:
    client = _client(project, db)
    evil = client.get("/models/nope", headers={"Referer": "javascript:alert(1)"})
    assert "javascript:" not in evil.text
    api = client.get("/api/nothing", headers={"Referer": "https://elsewhere.example/x"})
    assert api.json()["back"] == "/"
    ours = client.get("/api/nothing", headers={"Referer": "http://testserver/budgets?x=1"})
    assert ours.json()["back"] == "/budgets?x=1"


def test_plots_are_served_only_from_the_runs_report(project: Project, db: Database) -> None:
    from sluice.util.fs import atomic_write_json

    folder = project.state_dir / "reports" / "run-2"
    folder.mkdir(parents=True)
    (folder / "m-roc.png").write_bytes(b"\x89PNG fake")
    (folder / "secret.txt").write_text("no")
    atomic_write_json(folder / "report.json", {"run_id": "run-2", "plots": {"m": ["m-roc.png"]}})
    client = _client(project, db)
    assert client.get("/runs/run-2/plots/m-roc.png").content == b"\x89PNG fake"
    for name in ("secret.txt", "report.json", "..%2F..%2Fsluice.yaml"):
        assert client.get(f"/runs/run-2/plots/{name}").status_code == 404
    assert client.get("/runs/..%2F..%2Fx/plots/m-roc.png").status_code in (400, 404)


def test_a_form_rejects_with_a_reason(project: Project, db: Database,
                                      tokens: dict[str, str]) -> None:
    client = _client(project, db)
    client.post("/api/models/churn/promote", json={"alias": "production", "version": 2},
                headers=_bearer(tokens["alice"]))
    page = client.post("/signin", data={"token": tokens["bob"], "next": "/models/churn"})
    done = client.post("/requests/1/reject", data={"csrf": _csrf(page.text),
                                                   "reason": "calibration"})
    assert "request 1 rejected" in done.text and "No pending promotion requests" in done.text
    from sluice.db.read import as_reader

    details = as_reader(db).rows("SELECT actor, details FROM audit_log WHERE action = 'reject'")
    assert details[0]["actor"] == "bob" and "calibration" in details[0]["details"]
