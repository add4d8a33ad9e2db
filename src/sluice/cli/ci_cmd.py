"""``sluice ci``: generate and check the CI files that run the tiers."""

from __future__ import annotations

import typer

ci_app = typer.Typer(help="Generate CI configuration from the tiers, and check it is current.",
                     no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci")
