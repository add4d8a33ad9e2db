"""The sluice database: SQLite under ``.sluice/`` by default, PostgreSQL for teams.

Opening a database brings its schema up to date with Alembic migrations (under
a lock, so two processes never migrate at once); a database written by a newer
sluice is refused rather than damaged. SQLAlchemy and Alembic are imported only
here, on first use, so commands that never touch the database stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from sluice.workspace.project import Project

DATABASE_ENV = "SLUICE_DATABASE_URL"
DEFAULT_DATABASE = "sqlite:///.sluice/sluice.db"


def database_url(root: Path, configured: str | None) -> str:
    """The URL to use: $SLUICE_DATABASE_URL, then sluice.yaml, then SQLite in .sluice/."""
    url = os.environ.get(DATABASE_ENV) or configured or DEFAULT_DATABASE
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            url = f"sqlite:///{root / relative}"
    return url


def describe(url: str) -> str:
    """The URL with any password masked, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


class Database:
    """An engine whose schema is known to be current."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        # Called with a model's name after a registry change of it is committed (the
        # MLflow mirror, sluice.registry.mirror); each must not raise.
        self.after_registry_change: list[Callable[[str], None]] = []

    def registry_changed(self, model: str) -> None:
        for hook in self.after_registry_change:
            hook(model)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def _create_engine(url: str) -> Engine:
    from sqlalchemy import create_engine, event

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # How long to wait for another process's write lock before giving up.
        busy = float(os.environ.get("SLUICE_DB_BUSY_TIMEOUT", "30"))
        engine = create_engine(url, connect_args={"timeout": busy})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise DatabaseError(f"the driver for {describe(url)} is not installed ({exc.name})",
                            hint="for PostgreSQL: pip install 'sluice-ml[postgres]'") from None
    except Exception as exc:
        raise DatabaseError(f"invalid database URL {describe(url)}: {exc}",
                            hint="write it like postgresql+psycopg://user@host/db or "
                                 "sqlite:///path/to/file.db") from None


def _current_revision(conn: Connection) -> str | None:
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return str(row[0]) if row else None


def _migrate(engine: Engine, lock_dir: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from sluice.util.fs import FileLock

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
    lock = FileLock(lock_dir / "db-migrate.lock")
    lock.acquire(blocking=True)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Serialise migrations across machines sharing one server.
                conn.execute(text("SELECT pg_advisory_xact_lock(7243110)"))
            current = _current_revision(conn)
            if current is not None and current not in known:
                raise DatabaseError(
                    f"the database was written by a newer sluice (schema {current})",
                    hint="upgrade sluice (pip install -U sluice-ml) on this machine")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        lock.release()


def configured_database(project: Project) -> str | None:
    """`storage: database:` or top-level `database:` (the same setting; one may be set)."""
    spec = project.config.spec
    shared, top = spec.storage.database, spec.database
    if shared and top and shared != top and not os.environ.get(DATABASE_ENV):
        from sluice.errors import ConfigError

        raise ConfigError("`storage: database:` and `database:` name different databases",
                          hint="they are the same setting: keep one of them",
                          location=project.config.locate("storage", "database"))
    return shared or top


def open_project_database(project: Project) -> Database:
    """The database a project's sluice.yaml (or $SLUICE_DATABASE_URL) names."""
    return open_database(database_url(project.root, configured_database(project)),
                         project.state_dir / "locks")


def open_database(url: str, lock_dir: Path) -> Database:
    """Connect and make sure the schema is current; DatabaseError says what to do otherwise."""
    from sqlalchemy.exc import SQLAlchemyError

    from sluice.db.schema import SCHEMA_REVISION

    engine = _create_engine(url)
    try:
        with engine.connect() as conn:
            current = _current_revision(conn)
        if current != SCHEMA_REVISION:
            _migrate(engine, lock_dir)
    except DatabaseError:
        raise
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        locked = "locked" in reason.lower()
        raise DatabaseError(
            f"cannot use the database {describe(url)}: {reason}",
            hint="another process holds it; retry, or check for a stuck sluice run"
            if locked else "check the URL, that the server is running and reachable, and "
                           f"the credentials (set {DATABASE_ENV} or `database:` in sluice.yaml)",
        ) from None
    return Database(engine, url)
