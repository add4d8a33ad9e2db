"""``sluice data validate`` and ``sluice data infer``: check data against its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo, print_json


def validate(
    datasets: Annotated[list[str] | None, typer.Argument(
        help="Datasets to validate [default: every dataset with a schema].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (same as "
                                          "--format json).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="text, markdown or json.")] = "text",
    no_cache: Annotated[bool, typer.Option("--no-cache",
                                           help="Re-read the data even if unchanged.")] = False,
) -> int:
    """Check datasets against their schema files; exit 1 if any check fails.

    A dataset's `schema:` in sluice.yaml names the schema file (see docs/data.md).
    Results are cached by data content and schema: unchanged data is not re-read.

    Examples:

      sluice data validate

      sluice data validate customers --format markdown >> report.md

      sluice data validate customers events --json
    """
    from sluice.data.validation import validate_datasets
    from sluice.data.validation.render import render_json, render_markdown, render_text
    from sluice.errors import UsageError
    from sluice.workspace.project import load_project

    if fmt not in ("text", "markdown", "json"):
        raise UsageError(f"unknown --format `{fmt}`", hint="use text, markdown or json")
    results = validate_datasets(load_project(), datasets, use_cache=not no_cache)
    if as_json or fmt == "json":
        print_json(render_json(results))
    elif fmt == "markdown":
        echo(render_markdown(results).rstrip("\n"))
    else:
        echo(render_text(results))
    return 0 if all(r.ok for r in results) else 1


def infer(
    dataset: Annotated[str, typer.Argument(help="The dataset to read.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write [default: schemas/DATASET.yaml].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> int:
    """Write a starter schema from the data: dtypes, ranges, allowed values, keys.

    Review the file before relying on it: ranges are the observed ones widened
    by 10 %, `allowed` lists only the values seen.

    Examples:

      sluice data infer customers

      sluice data infer events --output schemas/events.yaml --force
    """
    from sluice.data.validation import infer_schema
    from sluice.workspace.project import load_project

    project = load_project()
    path = infer_schema(project, dataset, output, force)
    if path.is_relative_to(project.root):
        shown = path.relative_to(project.root)
        echo(f"wrote {shown}; review it, then set `schema: {shown}` on datasets.{dataset} "
             "in sluice.yaml and run `sluice data validate`")
    else:
        echo(f"wrote {path}; review it, move it into the repository and set `schema:` on "
             f"datasets.{dataset} to its path relative to the repository root")
    return 0


def register(data_app: typer.Typer) -> None:
    """Add this module's commands to the ``sluice data`` group."""
    data_app.command("validate")(validate)
    data_app.command("infer")(infer)
