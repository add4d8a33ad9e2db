"""A throw-away PostgreSQL server for tests that need a real one.

``postgres_url`` (session-scoped) runs ``initdb`` into a folder under pytest's
temporary root, starts the server on 127.0.0.1 with a free port and password
authentication, creates a database and yields its SQLAlchemy URL
(``postgresql+psycopg://…``); the server is stopped (``pg_ctl stop -m
immediate``) when the session ends. ``fresh_postgres_db`` creates a new, empty
database on that server for each test.

Use them from a test module with ``pytest_plugins = ["tests.postgres"]``.

PostgreSQL refuses to run as root. When the tests run as root, initdb and the
server run as ``nobody``: the server's folder is given to that user, and the
folders above it (pytest makes its own 0700) are made traversable (search only,
``o+x``) just while initdb, ``pg_ctl start`` and ``pg_ctl stop`` run, then put
back. A running server only uses paths relative to its data directory, except for
checkpoints, which the settings below keep from happening while a session runs.

The write guard in tests/conftest.py only allows writes under a test's own
tmp_path. Everything this module writes from Python (the folder, the password
file, postgresql.conf) happens while the session fixture is set up, before any
test's guard is active; the server and initdb are not Python, so the guard does
not watch them. ``fresh_postgres_db`` only talks to the server over TCP.
Requesting ``postgres_url`` late, through ``request.getfixturevalue`` inside a
test, would make the session setup's writes count against that test.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

MISSING = "PostgreSQL binaries not found; .ci/run installs them"
UNPRIVILEGED_USERS = ("nobody",)  # who runs the server when the tests run as root
USER = "sluice"
STARTUP_TIMEOUT_S = 60
ATTEMPTS = 3  # to start a server
SERVER_SETTINGS = {  # a disposable server: fast over durable
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",  # TCP only: no socket in a shared folder
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
    # A checkpoint rewrites global/pg_control by its full path, which the server cannot
    # reach once the folders above it are closed again (see the module docstring): a
    # timed one, 5 minutes after the start and spread over 4.5 more, killed the server of
    # a session that ran longer. No timed checkpoint, and WAL never forces one.
    "checkpoint_timeout": "'1d'",
    "max_wal_size": "'64GB'",
}


def find_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when they are absent."""
    candidates: list[Path] = []
    if (initdb := shutil.which("initdb")) and shutil.which("pg_ctl"):
        candidates.append(Path(initdb).resolve().parent)
    if pg_config := shutil.which("pg_config"):
        with suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                    timeout=10, check=True).stdout.strip()
            candidates.append(Path(bindir))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        candidates += sorted((p for p in Path("/").glob(pattern.lstrip("/"))), key=version,
                             reverse=True)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: None to run as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with suppress(KeyError):
            account = pwd.getpwnam(name)
            if account.pw_uid != 0:
                return account
    pytest.skip(f"running as root and none of the users {UNPRIVILEGED_USERS} exists to run "
                "PostgreSQL (it refuses to run as root)")


@contextmanager
def _traversable(path: Path, account: pwd.struct_passwd | None) -> Iterator[None]:
    """Let ``account`` reach ``path`` for a moment: o+x on our folders above it, then undo.

    Sessions running at once (pytest-xdist, two people's runs) share pytest's root
    folder, so the window is serialised by an flock on the system temp folder (a lock
    on a directory writes nothing); otherwise one session could take the bit away
    while another's initdb runs.
    """
    if account is None:
        yield
        return
    lock = os.open(tempfile.gettempdir(), os.O_RDONLY)
    changed: list[tuple[Path, int]] = []
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for folder in path.parents:
            info = folder.stat()
            if info.st_mode & stat.S_IXOTH or info.st_uid != os.geteuid():
                continue
            os.chmod(folder, stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
            changed.append((folder, stat.S_IMODE(info.st_mode)))
        yield
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, mode)
        os.close(lock)  # releases the flock


@dataclass
class PostgresServer:
    """A running server: where it lives and how to reach it."""

    bin_dir: Path
    base: Path  # owned by the server's account; holds data/ and server.log
    account: pwd.struct_passwd | None
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = 0
    host: str = "127.0.0.1"
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql+psycopg://{USER}:{secret}@{self.host}:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = STARTUP_TIMEOUT_S + 30
             ) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, Any] = {}
        if self.account is not None:
            as_user = {"user": self.account.pw_uid, "group": self.account.pw_gid,
                       "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], capture_output=True,
                              text=True, timeout=timeout, cwd=self.base, env=env,
                              stdin=subprocess.DEVNULL, **as_user)

    def _fail(self, what: str, result: subprocess.CompletedProcess[str]) -> NoReturn:
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stdout}"
                           f"{result.stderr}\nserver log:\n{log}")

    def init(self) -> None:
        password_file = self.base / "password"
        password_file.write_text(self.password + "\n")
        if self.account is not None:
            os.chown(password_file, self.account.pw_uid, self.account.pw_gid)
        try:
            with _traversable(self.base, self.account):
                result = self._run("initdb", "-D", str(self.data), "-U", USER,
                                   f"--pwfile={password_file}", "--auth=scram-sha-256",
                                   "--encoding=UTF8", "--locale=C", "--no-sync")
        finally:
            password_file.unlink()
        if result.returncode != 0:
            self._fail("initdb", result)
        settings = "".join(f"{k} = {v}\n" for k, v in SERVER_SETTINGS.items())
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/postgres.py\n" + settings)

    def start(self) -> None:
        self.port = _free_port()
        with _traversable(self.base, self.account):
            result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log),
                               "-o", f"-p {self.port}", "-w", "-t", str(STARTUP_TIMEOUT_S),
                               "start")
        if result.returncode != 0:
            self._kill()  # a half-started server must not keep the data folder
            self._fail("pg_ctl start", result)

    def stop(self) -> None:
        with _traversable(self.base, self.account):
            result = self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w",
                               "-t", "30", "stop", timeout=60)
        if result.returncode != 0:
            self._kill()

    def _kill(self) -> None:
        """Stop the postmaster named in postmaster.pid without pg_ctl, if one runs.

        SIGQUIT is what ``pg_ctl stop -m immediate`` sends; SIGKILL if it lingers.
        """
        with suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
            for tick in range(300):  # 15 s at most (a zombie never goes)
                # os.kill(pid, 0) raises once it is gone.
                os.kill(pid, signal.SIGKILL if tick == 200 else 0)
                time.sleep(0.05)

    def connect(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=USER,
                               password=self.password, dbname=database, autocommit=True,
                               connect_timeout=10)

    def create_database(self, prefix: str = "test") -> str:
        """Create a new empty database; its URL."""
        name = f"{prefix}_{next(self._names)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, stopped at its end."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(MISSING)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[dev]' installs it)")
    account = _unprivileged()
    server = None
    for attempt in range(ATTEMPTS):
        # A new folder and port each time: the port may have been taken meanwhile, or a
        # pytest session starting at that moment may have reset its root folder to 0700.
        base = tmp_path_factory.mktemp("postgres")
        if account is not None:
            os.chown(base, account.pw_uid, account.pw_gid)
        server = PostgresServer(bin_dir, base, account)
        try:
            server.init()
            server.start()
            break
        except (RuntimeError, subprocess.TimeoutExpired):
            server._kill()
            if attempt == ATTEMPTS - 1:
                raise
    assert server is not None
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of one database on the session's server, shared by the tests that use it."""
    return postgres_server.create_database("sluice")


@pytest.fixture
def fresh_postgres_db(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database for this test alone."""
    return postgres_server.create_database("test")
