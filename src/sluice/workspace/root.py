"""Where a checkout is, and its local state, without loading its config.

:mod:`sluice.workspace.project` builds the full project (config, graph, store);
what only needs the root and the stat index — `sluice data status` — starts here,
without importing the config, store and graph modules.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sluice.errors import ConfigError
from sluice.util.statcache import INDEX_FILE, StatCache

STATE_DIR = ".sluice"
# sluice.config.base.CONFIG_FILE (tests/unit/data/test_status_fast.py checks they agree):
# importing that module (the config's types, interpolation) would cost a warm
# `sluice data status` a tenth of its time above the floor.
CONFIG_FILE = "sluice.yaml"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``sluice.yaml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(f"no {CONFIG_FILE} in {here} or any folder above it",
                      hint="run `sluice init` to create one, or cd into your project")


def ignore_state_dir(root: Path) -> None:
    """Keep ``.sluice/`` (caches, logs, locks) out of git, as DVC does for ``.dvc/``."""
    marker = root / STATE_DIR / ".gitignore"
    if not marker.exists():
        from sluice.util.fs import atomic_write_bytes  # (tempfile, shutil): only to write

        # A read-only checkout can still plan and report.
        with contextlib.suppress(OSError):
            atomic_write_bytes(marker, b"# sluice's local state: never commit it\n*\n")


def checkout_stat_cache(root: Path) -> StatCache:
    """The stat index of the checkout at ``root``."""
    ignore_state_dir(root)
    return StatCache(root / STATE_DIR / INDEX_FILE)
