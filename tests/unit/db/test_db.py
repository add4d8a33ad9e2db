"""Database migrations: from empty, from the previous schema, and a newer schema refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sluice.db import open_database
from sluice.db.schema import SCHEMA_REVISION
from sluice.errors import DatabaseError


def _revision(path: Path) -> str:
    return str(sqlite3.connect(path).execute("SELECT version_num FROM alembic_version")
               .fetchone()[0])


def _tables(path: Path) -> set[str]:
    rows = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")
    return {r[0] for r in rows}


def test_migrates_an_empty_database_to_the_current_schema(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    open_database(f"sqlite:///{db}", tmp_path)
    assert _revision(db) == SCHEMA_REVISION
    assert {"runs", "executions", "gate_results", "model_versions", "aliases",
            "alias_events", "promotion_requests", "audit_log"} <= _tables(db)


def test_upgrades_from_the_previous_revision_keeping_data(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    import sluice.db

    db = tmp_path / "s.db"
    engine = create_engine(f"sqlite:///{db}")
    config = Config()
    config.set_main_option("script_location",
                           str(Path(sluice.db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002_gate_results")
        conn.exec_driver_sql("INSERT INTO runs (run_id, tier, started_at, wall_s, outcome, "
                             "cost_usd) VALUES ('r1', 'pr', 1.0, 2.0, 'ok', 0.5)")
    assert _revision(db) == "0002_gate_results"
    open_database(f"sqlite:///{db}", tmp_path)
    assert _revision(db) == SCHEMA_REVISION
    assert sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchall() == [("r1",)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    open_database(f"sqlite:///{db}", tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE alembic_version SET version_num = '0099_future'")
    conn.commit()
    with pytest.raises(DatabaseError, match="written by a newer sluice"):
        open_database(f"sqlite:///{db}", tmp_path)
