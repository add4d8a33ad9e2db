"""`sluice ui` in a real browser (Debian's Chromium via Playwright), against a real server.

After merge tiers have registered versions: open the overview, follow a run to
its model, see the plots load, be refused an approval without signing in,
sign in with a token, approve a pending request and roll back — reaching every
action with Tab and Enter only — and see the alias timeline change. The same
pages against PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser import launch, needs_chromium
from tests.conftest import sluice
from tests.e2e.pipelines import PREDICT, write_project
from tests.e2e.test_registry import CONFIG  # merge registers, staging → production
from tests.processes import wait_for

pytest_plugins = ["tests.postgres"]
pytest.importorskip("fastapi")

NO_CI = {"GITHUB_ACTOR": "", "GITLAB_USER_LOGIN": "", "BUILD_USER_ID": "",
         "CHANGE_AUTHOR": "", "CIRCLE_USERNAME": ""}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def _prepare(repo: Path, tmp_path: Path) -> dict[str, str]:
    """A project after two merge tiers, a pending production request by alice, and a
    token for bob; returns the env a `sluice ui` started on it should get."""
    env = {**NO_CI, "SLUICE_UI_TOKENS": str(tmp_path / "tokens.json")}
    if os.environ.get("SLUICE_DATABASE_URL"):
        env["SLUICE_DATABASE_URL"] = os.environ["SLUICE_DATABASE_URL"]
    write_project(repo, CONFIG, files={"predict.py": PREDICT,
                                       "params.yaml": "quality: 0.3\nrows: 600\n"})
    sluice(repo, "run", "--tier", "merge", env=env)
    (repo / "params.yaml").write_text("quality: 0.25\nrows: 600\n")
    sluice(repo, "run", "--tier", "merge", env=env)
    sluice(repo, "promote", "churn", "2", "--to", "production", "--actor", "alice", env=env)
    env["BOB"] = sluice(repo, "ui", "token", "add", "bob", env=env).stdout.strip()
    return env


def _serve(repo: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "sluice", "ui", "--port", str(port)],
                              cwd=repo, env={**os.environ, **env}, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _up(base + "/api/models") or server.poll() is not None, timeout=120,
             what="for `sluice ui` to answer")
    assert server.poll() is None, server.communicate()[0]
    return server, base


def _keyboard(page: Any, element_id: str) -> None:
    """Reach ``element_id`` with Tab alone, then press Enter on it."""
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            # Every action is a form post answered by a redirect: wait for that page,
            # not for the load state of the one still showing.
            with page.expect_navigation():
                page.keyboard.press("Enter")
            page.wait_for_load_state()
            return
    pytest.fail(f"Tab never reached #{element_id}")


def _every_action_is_tabbable(page: Any) -> None:
    """Tab through the whole page: every button and link must take the focus."""
    total = page.evaluate("""() => {
        const all = Array.from(document.querySelectorAll(
            'button, a[href], input:not([type=hidden])'));
        all.forEach((e, i) => e.dataset.k = i);
        return all.length; }""")
    reached = set()
    for _ in range(total + 5):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && document.activeElement.dataset.k"))
    assert {str(i) for i in range(total)} <= reached, (total, sorted(reached, key=str))


def _images(page: Any) -> list[int]:
    page.wait_for_load_state("load")
    return list(page.evaluate("Array.from(document.images).map(i => i.complete ? "
                              "i.naturalWidth : 0)"))


def _browse(repo: Path, env: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    server, base = _serve(repo, env)
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = browser.new_page()
                page.goto(base + "/")
                assert "Read-only until you" in page.inner_text("#read-only")
                latest = page.inner_text("#latest")
                assert "merge" in latest and "\tok\t" in latest
                assert "alice" in page.inner_text("#requests")
                page.click("#latest a")  # the latest merge run
                page.wait_for_url(base + "/runs/*")
                page.wait_for_load_state()
                widths = _images(page)
                assert len(widths) >= 2 and all(w > 0 for w in widths), widths
                assert "roc_auc" in page.inner_text("#report")
                page.click("#report-models a")  # from the run to its model
                page.wait_for_url(base + "/models/churn")
                page.wait_for_load_state()
                assert "approve-1" not in page.content()  # not signed in: no actions
                assert page.locator("#versions a[href^='/runs/']").count() == 2  # lineage
                # Two versions with stored predictions: paired intervals, as `metrics diff`
                compared = page.request.get(base + "/api/models/churn/compare?a=1&b=2").json()
                assert compared["method"].startswith("paired bootstrap"), compared
                auc = next(m for m in compared["metrics"] if m["metric"] == "roc_auc")
                assert auc["low"] is not None and auc["low"] <= auc["delta"] <= auc["high"]
                page.goto(base + "/models/churn?a=1&b=2")
                assert "paired bootstrap" in page.inner_text("#comparison")
                page.goto(base + "/models/churn")
                refused = page.request.post(base + "/requests/1/approve",
                                            form={"csrf": "x"})
                assert refused.status == 401
                api = page.request.post(base + "/api/requests/1/approve")
                assert api.status == 401 and "bearer token" in api.json()["error"]
                page.goto(base + "/budgets")
                assert all(w > 0 for w in _images(page))

                page.goto(base + "/signin?next=/models/churn")
                page.focus("#token")
                page.keyboard.type(env["BOB"])
                page.keyboard.press("Enter")
                page.wait_for_url(base + "/models/churn")
                assert page.inner_text("#actor") == "bob"
                _every_action_is_tabbable(page)
                page.reload()
                before = page.inner_text("#timeline")
                assert "production" not in before
                _keyboard(page, "approve-1")
                assert "approved by bob" in page.inner_text("[role=status]")
                timeline = page.inner_text("#timeline")
                assert "production (none) → v2 · approve by bob" in timeline
                assert "production → v2" not in before
                _keyboard(page, "rollback-staging")
                assert "rolled back: 2 → 1" in page.inner_text("[role=status]")
                assert "staging v2 → v1 · rollback by bob" in page.inner_text("#timeline")
                assert "v1" in page.inner_text("#aliases")
                page.screenshot(path=str(tmp_path / "model.png"), full_page=True)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    history = sluice(repo, "models", "history", "churn", env=env).stdout
    assert "approve   by bob" in history and "rollback  by bob" in history


@pytest.mark.slow
@needs_chromium
def test_dashboard_in_chromium(repo: Path, tmp_path: Path) -> None:
    _browse(repo, _prepare(repo, tmp_path), tmp_path)


@pytest.mark.slow
@needs_chromium
def test_dashboard_in_chromium_on_postgresql(fresh_postgres_db: str, repo: Path,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", fresh_postgres_db)
    env = _prepare(repo, tmp_path)
    assert env["SLUICE_DATABASE_URL"] == fresh_postgres_db
    _browse(repo, env, tmp_path)
    assert not (repo / ".sluice" / "sluice.db").exists()  # every page read PostgreSQL
