"""A sluice project on disk: its root, config, graph, store and local state.

``.sluice/`` holds what one checkout keeps for itself: the stat cache, per-stage
records of the last run, logs, locks and (by default) the content store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sluice.config.base import Config
from sluice.config.load import load_config
from sluice.errors import ConfigError, StoreError
from sluice.store import open_store
from sluice.store.base import Store
from sluice.store.local import LocalStore
from sluice.util.hashing import Hasher
from sluice.util.statcache import INDEX_FILE, StatCache
from sluice.workspace.graph import Graph, build_graph
from sluice.workspace.imports import ImportFinder
from sluice.workspace.root import STATE_DIR as STATE_DIR  # the root, without the config
from sluice.workspace.root import find_root as find_root
from sluice.workspace.root import ignore_state_dir

CACHE_ENV = "SLUICE_CACHE"  # this checkout's own store (a folder)
SHARED_CACHE_ENV = "SLUICE_CACHE_URL"  # the store CI runners share (overrides storage.cache)
# Set (to 1/true/yes) in pull-request jobs: read the shared store, never write it.
READ_ONLY_ENV = "SLUICE_CACHE_READ_ONLY"


def shared_read_only() -> bool:
    """Whether $SLUICE_CACHE_READ_ONLY says to read the shared store and never write it."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class Project:
    """Config, graph and state of one checkout."""

    root: Path
    config: Config
    graph: Graph
    cache_url: str = field(default="")

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def shared_cache_url(self) -> str | None:
        """The shared store: $SLUICE_CACHE_URL, then `storage: cache:` in sluice.yaml.

        ``SLUICE_CACHE_URL=none`` turns it off: CI jobs that run pull-request code
        have no credentials for it and work from their local cache alone.
        """
        value = os.environ.get(SHARED_CACHE_ENV)
        if value is not None and value.strip().lower() == "none":
            return None
        return value or self.config.spec.storage.cache or None

    @cached_property
    def store(self) -> Store:
        """The local store, with the shared one behind it when one is configured."""
        local = open_store(self.cache_url or os.environ.get(CACHE_ENV)
                           or f"{STATE_DIR}/cache", self.root)
        shared_url = self.shared_cache_url
        if not shared_url or not isinstance(local, LocalStore):
            return local
        try:
            shared = open_store(shared_url, self.root)
        except StoreError as exc:
            if os.environ.get(SHARED_CACHE_ENV):
                raise
            raise ConfigError(f"`storage: cache:` {exc.message}", hint=exc.hint,
                              location=self.config.locate("storage", "cache")) from None
        if isinstance(shared, LocalStore) and shared.root.resolve() == local.root.resolve():
            return local
        from sluice.store.layered import LayeredStore

        return LayeredStore(local, shared, read_only=shared_read_only())

    @cached_property
    def stat_cache(self) -> StatCache:
        return StatCache(self.state_dir / INDEX_FILE)

    @cached_property
    def hasher(self) -> Hasher:
        return Hasher(self.stat_cache)

    @cached_property
    def import_finder(self) -> ImportFinder:
        """One finder per process, so a run parses each local module once."""
        root = self.root

        def read(rel: str) -> bytes | None:
            try:
                return (root / rel).read_bytes()
            except OSError:
                return None

        return ImportFinder(lambda rel: (root / rel).is_file(), read)

    def log_path(self, stage: str) -> Path:
        return self.state_dir / "logs" / f"{stage}.log"

    def record_path(self, stage: str) -> Path:
        return self.state_dir / "stages" / f"{stage}.json"

    def lock_path(self, stage: str) -> Path:
        return self.state_dir / "locks" / f"{stage}.lock"


def load_project(start: Path | None = None) -> Project:
    root = find_root(start)
    config = load_config(root)
    project = Project(root=root, config=config, graph=build_graph(config))
    ignore_state_dir(root)
    return project
