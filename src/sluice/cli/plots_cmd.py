"""``sluice plots diff``: an HTML page with two revisions' plots overlaid, per model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo, print_json
from sluice.cli.revisions import JsonFlag, NewRevision, OldRevision, command_group


def register(app: typer.Typer) -> None:
    plots_app = command_group(app, "plots", "Plots: overlay each model's plots from two revisions.")

    @plots_app.command("diff")
    def diff(
        old: OldRevision = None,
        new: NewRevision = None,
        out: Annotated[Path, typer.Option("-o", "--out", help="The HTML page to write.")
                       ] = Path("plots-diff.html"),
        as_json: JsonFlag = False,
    ) -> int:
        """Write one HTML page with both revisions' ROC, calibration and per-slice plots.

        The sides are those of `sluice metrics diff`: predictions fetched by hash
        from the registry version of each revision, or the working tree's last run.

        Examples:

          sluice plots diff                      # the base branch against the working tree

          sluice plots diff main HEAD -o compare.html
        """
        from sluice.report.compare import plots_diff
        from sluice.workspace.project import load_project

        result = plots_diff(load_project(), old, new, out.resolve())
        if as_json:
            print_json(result.to_json())
            return 0
        for model, files in result.plots.items():
            echo(f"{model}: {len(files)} plot(s)" + ("" if files else
                 " (no predictions on either side: see the page)"))
        echo(f"wrote {out}")
        return 0

