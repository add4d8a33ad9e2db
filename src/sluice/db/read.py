"""Read-only queries that need no SQLAlchemy when the database is a current SQLite file.

A one-shot read (`sluice models show m@production`) would spend most of its time
importing SQLAlchemy. :func:`open_reader` gives a :class:`Reader` that runs plain
SQL with ``:name`` parameters: over the standard library's sqlite3 when the URL is
a SQLite file whose schema is this sluice's own (nothing to migrate), otherwise
through :func:`sluice.db.open_database` (SQLAlchemy: PostgreSQL, or a SQLite file
that is missing or needs migrating). This is the one place sqlite3 reads a sluice
database; each query is written once (in the module that owns it, e.g.
sluice.registry.versions) and runs the same on either reader.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sluice.db import Database, configured_database, database_url, open_database
from sluice.db.revision import SCHEMA_REVISION
from sluice.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from sluice.workspace.project import Project


class Reader(Protocol):
    """Runs one read-only SQL statement; rows come back as column → value mappings."""

    def rows(self, sql: str, params: Mapping[str, Any] | None = None
             ) -> list[dict[str, Any]]: ...


class EngineReader:
    """Reads through a SQLAlchemy engine (any database sluice supports)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), dict(params or {}))]


class SqliteReader:
    """Reads a SQLite file through the standard library's sqlite3."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self.connection = connection
        self.path = path

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            cursor = self.connection.execute(sql, dict(params or {}))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot read the database {self.path}: {exc}",
                                hint="another process may hold it; retry, or check for a "
                                     "stuck sluice run") from None


def sqlite_reader(url: str) -> SqliteReader | None:
    """A sqlite3 reader of the SQLite file ``url`` names, if it exists with the current
    schema; None otherwise (another database, or one that needs creating or migrating)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    if path in ("", ":memory:") or "?" in path or not os.path.isfile(path):
        return None
    # As sluice.db's engine waits for another process's write lock.
    busy = float(os.environ.get("SLUICE_DB_BUSY_TIMEOUT", "30"))
    try:
        connection = sqlite3.connect(path, timeout=busy)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:  # no such table yet: open_database creates the schema
        row = None
    if row is None or row[0] != SCHEMA_REVISION:
        connection.close()
        return None
    return SqliteReader(connection, path)


def open_reader(url: str, lock_dir: Path) -> Reader:
    """A reader of the database at ``url``; see the module's docstring."""
    return sqlite_reader(url) or EngineReader(open_database(url, lock_dir).engine)


def open_project_reader(project: Project) -> Reader:
    """A reader of the database a project's sluice.yaml (or $SLUICE_DATABASE_URL) names."""
    return open_reader(database_url(project.root, configured_database(project)),
                       project.state_dir / "locks")


def as_reader(source: Database | Reader) -> Reader:
    """``source`` itself, or a reader over an open :class:`Database`'s engine."""
    return EngineReader(source.engine) if isinstance(source, Database) else source
