"""``sluice report``: show the report of the last run (or of one run)."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.output import echo, print_json


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run: Annotated[str | None, typer.Option(help="Run id [default: the latest run].")
                       ] = None,
        fmt: Annotated[str, typer.Option(
            "--format", help="text, markdown, html (prints the file's path) or json.")
        ] = "text",
        as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")
                           ] = False,
    ) -> int:
        """Show what changed, what ran and what it cost, and each model's gate verdicts.

        Markdown suits a pull-request comment or $GITHUB_STEP_SUMMARY; the HTML page
        is self-contained, with the plots embedded.

        Examples:

          sluice report

          sluice report --format markdown >> "$GITHUB_STEP_SUMMARY"

          sluice report --run 20261129T090105-b055ae --json
        """
        from sluice.errors import UsageError
        from sluice.project import load_project
        from sluice.report import load_report, markdown

        data, folder = load_report(load_project(), run)
        chosen = "json" if as_json else fmt
        if chosen == "json":
            print_json(data)
        elif chosen == "markdown":
            echo(markdown(data, data.get("plots")))
        elif chosen == "html":
            echo(str(folder / "report.html"))
        elif chosen == "text":
            echo(markdown(data).replace("**", ""))
        else:
            raise UsageError(f"unknown format `{chosen}`",
                             hint="use text, markdown, html or json")
        return 0
