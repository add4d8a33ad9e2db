"""End-to-end: sluice against a real PostgreSQL server (tests/postgres.py starts one).

Skipped, with the reason shown, where the PostgreSQL binaries are absent.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sluice.db import DATABASE_ENV
from tests.conftest import git, sluice
from tests.e2e.pipelines import write_project

# The fixtures postgres_url and fresh_postgres_db: a real server, or a skip with the reason.
pytest_plugins = ["tests.postgres"]

PIPELINE = """\
stages:
  make:
    cmd: echo {label} > ${{outs.x}}
    outs: {{x: build/x.txt}}
  copy:
    cmd: cat ${{stages.make.outs.x}} > ${{outs.y}}
    outs: {{y: build/y.txt}}
"""


def project(path: Path, label: str = "one", extra: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "Test")
    write_project(path, PIPELINE.format(label=label) + extra, files={})
    return path


def query(url: str, sql: str) -> list[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def test_migrations_build_the_schema_once_and_reopening_is_a_noop(
        fresh_postgres_db: str, tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sluice.db import open_database
    from sluice.db.schema import SCHEMA_REVISION, metadata

    db = open_database(fresh_postgres_db, tmp_path / "locks")
    try:
        assert db.engine.dialect.name == "postgresql"
        with db.engine.connect() as conn:
            # The migrations build exactly the tables schema.py declares.
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.engine.dispose()
    assert (tmp_path / "locks/db-migrate.lock").exists()  # it migrated, under the lock
    assert query(fresh_postgres_db, "SELECT version_num FROM alembic_version") == [
        (SCHEMA_REVISION,)]

    again = open_database(fresh_postgres_db, tmp_path / "locks-again")
    again.engine.dispose()
    assert not (tmp_path / "locks-again").exists()  # current schema: no migration, no lock
    assert query(fresh_postgres_db, "SELECT version_num FROM alembic_version") == [
        (SCHEMA_REVISION,)]


@pytest.mark.parametrize("via", ["env", "config"])
def test_run_records_its_executions_in_postgres_and_budget_reads_them(
        tmp_path: Path, fresh_postgres_db: str, via: str) -> None:
    extra = f"database: {fresh_postgres_db}\n" if via == "config" else ""
    repo = project(tmp_path / "repo", extra=extra)
    env = {DATABASE_ENV: fresh_postgres_db} if via == "env" else {}
    result = json.loads(sluice(repo, "run", "--json", env=env).stdout)
    assert {s["stage"]: s["status"] for s in result["stages"]} == {"make": "ran", "copy": "ran"}

    assert query(fresh_postgres_db, "SELECT run_id, tier, outcome FROM runs") == [
        (result["run_id"], "default", "ok")]
    executions = query(fresh_postgres_db, "SELECT run_id, stage, outcome FROM executions")
    assert sorted(executions) == [(result["run_id"], "copy", "ran"),
                                  (result["run_id"], "make", "ran")]
    assert not (repo / ".sluice/sluice.db").exists()  # nothing went to the SQLite default

    report = json.loads(sluice(repo, "budget", "--json", env=env).stdout)
    daily = report["tiers"]["default"]["daily"]
    assert daily["runs"] == 1 and daily["wall"] > 0 and daily["cpu_hours"] > 0

    # A cached rerun executes nothing and records nothing.
    sluice(repo, "run", env=env)
    assert len(query(fresh_postgres_db, "SELECT run_id FROM runs")) == 1


def test_concurrent_runs_of_many_projects_all_land_in_one_fresh_database(
        tmp_path: Path, fresh_postgres_db: str) -> None:
    from sluice.db.schema import SCHEMA_REVISION

    count = 8
    repos = [project(tmp_path / f"p{i}", label=f"project-{i}") for i in range(count)]
    env = {DATABASE_ENV: fresh_postgres_db}
    # Every process finds the database empty and migrates (each has its own lock
    # folder, so only PostgreSQL's advisory lock keeps them apart).
    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(lambda r: sluice(r, "run", "--json", env=env), repos))
    run_ids = {json.loads(r.stdout)["run_id"] for r in results}
    assert len(run_ids) == count

    assert {row[0] for row in query(fresh_postgres_db, "SELECT run_id FROM runs")} == run_ids
    executions = query(fresh_postgres_db,
                       "SELECT run_id, count(*) FROM executions GROUP BY run_id")
    assert dict(executions) == dict.fromkeys(run_ids, 2)
    assert query(fresh_postgres_db, "SELECT version_num FROM alembic_version") == [
        (SCHEMA_REVISION,)]


@pytest.mark.parametrize("command", ["budget", "run"])
def test_wrong_password_is_a_clear_error_that_masks_the_password(
        tmp_path: Path, postgres_url: str, command: str) -> None:
    from sqlalchemy.engine import make_url

    secret = "not-the-password-51423"
    url = make_url(postgres_url).set(password=secret).render_as_string(hide_password=False)
    repo = project(tmp_path / "repo")
    result = sluice(repo, command, env={DATABASE_ENV: url}, check=1)
    output = result.stdout + result.stderr
    assert "cannot use the database postgresql+psycopg://sluice:***@127.0.0.1:" in output
    assert "password authentication failed" in output
    assert secret not in output
    assert "Traceback" not in output
