"""``sluice data validate`` and ``sluice data infer``: check data against its schema."""

from __future__ import annotations

import typer


def register(data_app: typer.Typer) -> None:
    """Add this module's commands to the ``sluice data`` group."""
