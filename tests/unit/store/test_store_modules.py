"""The store package's shape: short modules, and no module reaching into a sibling's
private names (each shared helper has a public name where it lives)."""

from __future__ import annotations

import ast
from pathlib import Path

import sluice.store

FOLDER = Path(sluice.store.__file__).parent


def test_store_modules_stay_under_400_lines() -> None:
    long = {m.name: n for m in FOLDER.glob("*.py")
            if (n := len(m.read_text().splitlines())) > 400}
    assert not long, f"split these along a seam (see docs/architecture.md): {long}"


def test_store_modules_import_no_private_name_from_each_other() -> None:
    private = []
    for module in sorted(FOLDER.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sluice"):
                private += [f"{module.name}: {node.module}.{alias.name}"
                            for alias in node.names if alias.name.startswith("_")]
    assert not private
