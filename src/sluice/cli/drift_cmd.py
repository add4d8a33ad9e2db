"""``sluice data drift``: compare a dataset with its reference data."""

from __future__ import annotations

import typer


def register(data_app: typer.Typer) -> None:
    """Add this module's commands to the ``sluice data`` group."""
