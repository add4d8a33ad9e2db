"""``sluice data drift``: compare a dataset with its reference data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo, print_json


def drift(
    dataset: Annotated[str, typer.Argument(help="The dataset to compare.")],
    base: Annotated[str | None, typer.Option(
        help="The revision whose data is the reference (`auto`: from the CI environment) "
             "[needed for `reference: base`].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    markdown: Annotated[Path | None, typer.Option(
        "--markdown", help="Also write a Markdown report, with a histogram per drifted "
                           "column beside it.")] = None,
) -> int:
    """Per-column drift against the reference: PSI, KS, Wasserstein, JS, L-inf, missing rate.

    The reference is the same dataset at --base (`drift: reference: base`, the
    default) or the data the model behind an alias was trained on
    (`reference: model`). Thresholds come from the dataset's `drift:` section;
    exit 1 when a `fail` threshold is exceeded (see docs/data.md).

    Examples:

      sluice data drift customers --base main

      sluice data drift customers --base auto --json

      sluice data drift customers --base main --markdown drift/report.md
    """
    from sluice.data.drift_check import dataset_drift
    from sluice.data.drift_render import render_json, render_markdown, render_text
    from sluice.util.fs import atomic_write_bytes
    from sluice.workspace.project import load_project

    project = load_project()
    if base is not None:
        from sluice.ci.revision import resolve_base

        base = resolve_base(project.root, base,
                            default_branch=project.config.spec.ci.default_branch)
    result = dataset_drift(project, dataset, base)
    assert result.report is not None
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        text = f"# Drift of `{dataset}` against {result.reference}\n\n" + \
            render_markdown(result.report, markdown.parent)
        atomic_write_bytes(markdown, text.encode())
    if as_json:
        print_json({"dataset": dataset, "reference": result.reference,
                    **render_json(result.report)})
    else:
        echo(f"drift of `{dataset}` against {result.reference}")
        echo(render_text(result.report))
    return 1 if result.failed else 0


def register(data_app: typer.Typer) -> None:
    """Add this module's commands to the ``sluice data`` group."""
    data_app.command("drift")(drift)
