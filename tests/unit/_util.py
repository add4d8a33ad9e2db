"""Helpers for the unit tests: write a project into a temporary folder and load it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sluice.config import Config, load_config
from sluice.errors import ConfigError, ConfigErrors
from sluice.graph import Graph, build_graph


def write_project(root: Path, config: str, files: dict[str, str] | None = None) -> Path:
    """``root/sluice.yaml`` holding ``config`` (dedented) plus any other ``files``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sluice.yaml").write_text(textwrap.dedent(config), encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def load(root: Path, config: str, files: dict[str, str] | None = None) -> Config:
    return load_config(write_project(root, config, files))


def load_graph(root: Path, config: str,
               files: dict[str, str] | None = None) -> tuple[Config, Graph]:
    cfg = load(root, config, files)
    return cfg, build_graph(cfg)


def problems(root: Path, config: str, files: dict[str, str] | None = None) -> list[ConfigError]:
    """Every problem loading and graphing reports; fails if there is none."""
    try:
        load_graph(root, config, files)
    except ConfigErrors as exc:
        return exc.errors
    except ConfigError as exc:
        return [exc]
    raise AssertionError("expected the config to be rejected")
