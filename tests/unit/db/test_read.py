"""sluice.db.read: plain-SQL reads over sqlite3 on a current SQLite file, else SQLAlchemy."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from sluice.db import open_database
from sluice.db.read import EngineReader, SqliteReader, open_reader, sqlite_reader
from sluice.errors import UsageError
from sluice.registry.versions import get_version, list_models, register
from tests.unit._util import cli_imports

pytest_plugins = ["tests.postgres"]


def registry(url: str, lock_dir: Path) -> None:
    """Model `m`, versions 1..3, alias `production` on version 2."""
    from sluice.db.schema import aliases

    db = open_database(url, lock_dir)
    for i in range(3):
        register(db, "m", artifact_hash=f"{i}" * 32, artifact_path="model.pkl",
                 verdict="PASS", lineage={"commit": "abc", "tier": "merge"},
                 metrics={"auc": 0.9 + i / 100}, gates=[{"verdict": "PASS"}], creator="me")
    with db.engine.begin() as conn:
        conn.execute(aliases.insert().values(model="m", alias="production", version=2,
                                             revision=1, updated_at=time.time(),
                                             updated_by="me"))
    db.engine.dispose()


def check_reads(url: str, lock_dir: Path) -> None:
    reader = open_reader(url, lock_dir)
    engine = EngineReader(open_database(url, lock_dir).engine)
    for source in (reader, engine):
        assert get_version(source, "m", alias="production").version == 2
        assert get_version(source, "m").version == 3
        assert get_version(source, "m", 1).metrics == {"auc": 0.9}
        assert list_models(source) == [{"model": "m", "latest": 3, "versions": 3,
                                        "aliases": {"production": 2}}]
        with pytest.raises(UsageError, match="has no alias `prod`"):
            get_version(source, "m", alias="prod")
        with pytest.raises(UsageError, match="no model `n`"):
            get_version(source, "n")
    assert get_version(reader, "m", 2) == get_version(engine, "m", 2)


def test_a_current_sqlite_file_is_read_with_sqlite3_the_same_as_with_sqlalchemy(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    registry(url, tmp_path)
    assert isinstance(open_reader(url, tmp_path), SqliteReader)
    check_reads(url, tmp_path)


def test_postgresql_is_read_through_sqlalchemy(fresh_postgres_db: str, tmp_path: Path) -> None:
    registry(fresh_postgres_db, tmp_path)
    assert sqlite_reader(fresh_postgres_db) is None
    assert isinstance(open_reader(fresh_postgres_db, tmp_path), EngineReader)
    check_reads(fresh_postgres_db, tmp_path)


def test_a_missing_or_outdated_sqlite_file_goes_through_open_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    url = f"sqlite:///{path}"
    assert sqlite_reader(url) is None  # missing: open_database creates it
    assert isinstance(open_reader(url, tmp_path), EngineReader)
    assert isinstance(open_reader(url, tmp_path), SqliteReader)  # now current
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '0003_aliases'")
    conn.commit()
    conn.close()
    assert sqlite_reader(url) is None  # an older schema is migrated first
    sqlite3.connect(tmp_path / "empty.db").close()
    assert sqlite_reader(f"sqlite:///{tmp_path / 'empty.db'}") is None


def test_models_show_on_sqlite_imports_no_sqlalchemy_typer_or_click(tmp_path: Path) -> None:
    (tmp_path / "sluice.yaml").write_text("stages:\n  s:\n    cmd: echo\n")
    registry(f"sqlite:///{tmp_path / '.sluice' / 'sluice.db'}", tmp_path)
    shown, modules = cli_imports(tmp_path, "models", "show", "m@production", "--json")
    assert json.loads(shown)["version"] == 2
    assert [m for m in modules if m.split(".")[0] in ("sqlalchemy", "typer", "click")] == []


def test_a_one_shot_models_show_imports_only_what_the_read_needs(tmp_path: Path) -> None:
    # A deployment script's one lookup per process: besides the CLI framework and
    # SQLAlchemy, no config validation (the config is cached), no pipeline, no thread
    # pools, no shutil/tempfile (with random, bz2, lzma) — only a read.
    (tmp_path / "sluice.yaml").write_text("stages:\n  s:\n    cmd: echo\n")
    registry(f"sqlite:///{tmp_path / '.sluice' / 'sluice.db'}", tmp_path)
    cli_imports(tmp_path, "models", "show", "m@production", "--json")  # caches the config
    shown, modules = cli_imports(tmp_path, "models", "show", "m@production", "--json")
    assert json.loads(shown)["version"] == 2
    unneeded = ("pydantic", "yaml", "shutil", "tempfile", "random", "bz2", "lzma", "socket",
                "concurrent", "statistics", "difflib", "hashlib")
    assert [m for m in modules if m.split(".")[0] in unneeded
            or m.startswith(("sluice.pipeline", "sluice.store.layered", "sluice.orchestrate"))
            ] == []
