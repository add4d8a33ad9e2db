"""An executor's ``setup`` for stage capsules: the files it names, and its cached environment.

``setup: pip install -r requirements.txt`` runs on the worker before a stage. Its
files (:func:`setup_files`) travel in the code snapshot, and the environment it
builds is cached under the worker's cache folder, keyed by the hash of the command,
the content of those files and the Python running sluice, so a second stage (or a
second run) with the same setup reuses it without running the setup again.

The environment is a virtualenv that sees every package of the environment running
sluice (a ``.pth`` line adds that site folder, its own ``.pth`` files included), with
``pip`` bound to the new environment. It is built at its final path under a file
lock, and a marker file written last says it is complete: a virtualenv cannot be
moved after it is built (installed scripts name its absolute path), so "build
aside, then rename" would break it; a folder without the marker is a dead build and
is rebuilt.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import shlex
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from sluice.errors import ConfigError
from sluice.execute import run_one
from sluice.execute.base import Job
from sluice.util.fs import FileLock, atomic_write_bytes, remove_path
from sluice.util.hashing import hash_bytes
from sluice.util.safepath import path_problem

# Options whose value must be a file the setup reads (pip, uv, conda). Short `-c` and
# `-f` are not among them: `python -c CODE`, `test -f PATH` (a file there still counts).
_FILE_OPTIONS = frozenset({"-r", "--requirement", "--requirements", "--constraint",
                           "--file", "--env-file"})
_NESTED = ("-r ", "-c ", "--requirement ", "--constraint ", "--requirement=", "--constraint=")
_READY = ".sluice-ready"
_PIP_SHIM = '#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n'


def _clean(root: Path, text: str) -> str | None:
    """``text`` as a clean repo-relative path when it names a file under ``root``."""
    norm = posixpath.normpath(text)
    if path_problem(norm) is not None or not (root / norm).is_file():
        return None
    return norm


def _nested(root: Path, rel: str) -> list[str]:
    """Requirement files that the requirement file ``rel`` includes (``-r other.txt``)."""
    try:
        lines = (root / rel).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        text = line.strip()
        for prefix in _NESTED:
            if text.startswith(prefix):
                name = text[len(prefix):].strip()
                clean = _clean(root, posixpath.join(posixpath.dirname(rel), name))
                if clean is not None:
                    found.append(clean)
    return found


def setup_files(root: Path, setup: str | None) -> list[str]:
    """Repo-relative files that ``setup`` names (``-r requirements.txt``, ``bash env.sh``).

    Any word of the command that is a file in the project counts, and the files that
    requirement files include; a file after ``-r``, ``--constraint`` or ``--file`` that
    does not exist is a :class:`ConfigError` (the setup would fail on every worker).
    """
    if not setup:
        return []
    try:
        words = shlex.split(setup, comments=True)
    except ValueError as exc:
        raise ConfigError(f"the executor's setup command cannot be parsed: {exc}",
                          hint="check its quotes") from None
    found: list[str] = []
    for i, word in enumerate(words):
        option, eq, inline = word.partition("=")
        if word.startswith("-") and eq:
            value, named = inline, option in _FILE_OPTIONS
        else:
            value, named = word, i > 0 and words[i - 1] in _FILE_OPTIONS
        clean = _clean(root, value)
        if clean is not None:
            found.append(clean)
        elif named and "://" not in value and not (root / value).is_dir():
            raise ConfigError(f"the executor's setup `{setup}` names `{value}`, which is not a "
                              "file in the project",
                              hint="create and commit it, or fix the setup command")
    queue = list(found)
    while queue:
        for extra in _nested(root, queue.pop()):
            if extra not in found:
                found.append(extra)
                queue.append(extra)
    return list(dict.fromkeys(found))


def environment_key(setup: str, files: dict[str, str]) -> str:
    """What identifies a setup environment: the command, its files' hashes, the Python."""
    text = json.dumps({"setup": setup, "files": files, "python": sys.executable,
                       "version": sys.version}, sort_keys=True)
    return hash_bytes(text.encode())


def environment_vars(env_dir: Path) -> dict[str, str]:
    """The variables that put ``env_dir`` first: for the setup and for the stage."""
    return {"VIRTUAL_ENV": str(env_dir),
            "PATH": os.pathsep.join([str(env_dir / "bin"), os.environ.get("PATH", "")])}


def _create_venv(env_dir: Path) -> None:
    import venv

    has_pip = importlib.util.find_spec("pip") is not None
    # A copy of the interpreter, not a link (venv.create's default): the environment
    # lives as long as the cache, whatever happens to the path it was made from.
    venv.EnvBuilder(system_site_packages=True, with_pip=not has_pip).create(env_dir)
    found = sorted(env_dir.glob("lib/python*/site-packages"))
    if found:
        # sluice's own environment, .pth files included: the stage sees what sluice sees.
        lines = [f"import site; site.addsitedir({sysconfig.get_paths()[k]!r})"
                 for k in ("purelib", "platlib")]
        (found[0] / "_sluice_parent.pth").write_text("\n".join(dict.fromkeys(lines)) + "\n")
    if has_pip:
        # `pip` must install into this environment, not into sluice's (next on PATH).
        for name in ("pip", "pip3"):
            shim = env_dir / "bin" / name
            shim.write_text(_PIP_SHIM)
            shim.chmod(0o755)


def prepare_environment(setup: str, files: dict[str, str], *, stage: str, cwd: Path,
                        cache_dir: Path, log_path: Path,
                        secret_names: tuple[str, ...] = (),
                        on_wait: Callable[[], None] = lambda: None) -> tuple[Path, bool]:
    """The environment for ``setup`` (built now unless cached); (its folder, built now).

    Raises :class:`SetupFailed` when the setup command fails.
    """
    key = environment_key(setup, files)
    envs = cache_dir / "envs"
    env_dir = envs / key
    if (env_dir / _READY).is_file():
        return env_dir, False
    lock = FileLock(envs / f"{key}.lock")
    if not lock.acquire():
        on_wait()
        lock.acquire(blocking=True)
    try:
        if (env_dir / _READY).is_file():
            return env_dir, False  # another worker built it while we waited
        remove_path(env_dir)  # a build that died half-way
        _create_venv(env_dir)
        result = run_one(Job(stage=f"{stage}:setup", command=setup, cwd=cwd,
                             env=environment_vars(env_dir), log_path=log_path,
                             secret_names=secret_names))
        if not result.ok:
            remove_path(env_dir)
            raise SetupFailed(f"the executor's setup `{setup}` exited with code "
                              f"{result.returncode}; stage `{stage}` did not run",
                              hint="its output is in the stage's log above; fix the setup "
                                   "or the files it names")
        atomic_write_bytes(env_dir / _READY, f"{time.time()}\n".encode())
    finally:
        lock.release()
    return env_dir, True


class SetupFailed(ConfigError):
    """An executor's setup command failed on the worker."""
