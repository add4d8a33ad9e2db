"""The installed sluice's distribution name and version.

The import name and the command are ``sluice``, but the distribution on the
package index is ``sluice-ml``: ``sluice`` there is an unrelated project, so
anything that installs sluice by name (a generated CI file, a hint in an error
message) must ask for ``sluice-ml``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

DISTRIBUTION = "sluice-ml"


def installed_version() -> str | None:
    """The version of the installed ``sluice-ml``; None for an uninstalled source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return None


def install_hint(extra: str | None = None) -> str:
    """The pip command that installs sluice (with ``extra``) under its real name."""
    return f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {DISTRIBUTION}"


@lru_cache(maxsize=1)
def code_stamp(package: Path | None = None) -> str:
    """Changes whenever the sluice that runs changes: any of its source files.

    Caches keyed by it (the validated ``sluice.yaml``, the last evaluation) never
    outlive an upgrade or an edit of an editable install. Every ``.py`` file of the
    package counts, so no hand-kept list of modules can miss one. It reads stats, not
    bytes: ~150 ``stat`` calls cost about 2 ms, where hashing the sources would cost
    more than the no-op run that the caches exist to speed up. The version is left
    out on purpose: an upgrade rewrites the files anyway, and asking
    ``importlib.metadata`` for it costs ~20 ms of imports on every no-op run.
    """
    from sluice.util.hashing import hash_bytes

    root = package or Path(__file__).resolve().parents[1]
    stamps: list[str] = []
    # os.scandir rather than Path.rglob: a third of the cost on every no-op run.
    folders = [(str(root), "")]
    while folders:
        folder, prefix = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append((entry.path, f"{prefix}{entry.name}/"))
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    stamps.append(f"{prefix}{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    stamps.sort()
    return hash_bytes("\n".join(stamps).encode())
