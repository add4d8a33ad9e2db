"""The store package's shape: no module reaching into a sibling's private names (each
shared helper has a public name where it lives). Module length: tests/unit/test_architecture.py."""

from __future__ import annotations

import ast
from pathlib import Path

import sluice.store

FOLDER = Path(sluice.store.__file__).parent


def test_store_modules_import_no_private_name_from_each_other() -> None:
    private = []
    for module in sorted(FOLDER.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sluice"):
                private += [f"{module.name}: {node.module}.{alias.name}"
                            for alias in node.names if alias.name.startswith("_")]
    assert not private
