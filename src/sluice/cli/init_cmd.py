"""``sluice init``: write a starter sluice.yaml, or copy an example project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        example: Annotated[str | None, typer.Option(
            help="Copy this example project (e.g. `churn`) into the folder, which must be empty.")
        ] = None,
        force: Annotated[bool, typer.Option(help="Overwrite an existing sluice.yaml.")] = False,
        from_dvc: Annotated[bool, typer.Option(
            "--from-dvc", help="Convert the DVC project here (dvc.yaml, params.yaml, .dvc "
                               "files) into sluice.yaml and sluice.lock.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with --from-dvc).")
                           ] = False,
        path: Annotated[Path, typer.Argument(help="Folder to initialise.")] = Path("."),
    ) -> int:
        """Create sluice.yaml (a commented starter), an example project, or convert DVC's.

        Examples:

          sluice init

          sluice init --example churn my-project

          sluice init --from-dvc
        """
        from sluice.orchestrate.init import copy_example, write_starter

        if from_dvc:
            return _from_dvc(path, force=force, as_json=as_json)
        if example:
            written = copy_example(example, path)
            echo(f"copied example `{example}` into {path} ({len(written)} files)")
            echo("next: cd into it, `git init`, then `sluice run`")
        else:
            written = write_starter(path, force=force)
            echo(f"wrote {' and '.join(str(p) for p in written)}; edit the stages, then run "
                 "`sluice plan`")
        echo("stage outputs and pinned data are git-ignored for you (lines added to "
             ".gitignore when they are first written); commit .gitignore")
        return 0


def _from_dvc(path: Path, *, force: bool, as_json: bool) -> int:
    from sluice.cli.output import print_json
    from sluice.orchestrate.from_dvc import migrate_from_dvc

    done = migrate_from_dvc(path, force=force)
    if as_json:
        print_json(done.to_json())
        return 0
    stages = done.conversion.stages
    echo(f"wrote {done.config} with {len(stages)} stage(s) from dvc.yaml")
    if done.data.imported:
        echo(f"pinned {len(done.data.imported)} path(s) of DVC's data in sluice.lock, their "
             "bytes imported into sluice's store (md5-checked): "
             + ", ".join(p.path for p in done.data.imported))
    if done.data.remote:
        echo(f"pinned {len(done.data.remote)} path(s) by DVC's md5 (not in .dvc/cache): "
             "`sluice data pull` fetches them from the DVC remote")
    if done.notes:
        echo(f"{len(done.notes)} thing(s) to look at:")
        for note in done.notes:
            echo(f"  {note.location}: {note.message}")
            echo(f"      fix: {note.fix}")
    else:
        echo("everything carried over")
    echo("next: `sluice plan`, `sluice run`; once it runs, `git rm` dvc.yaml, dvc.lock and "
         "the .dvc files, commit sluice.yaml and sluice.lock, and share the data with "
         "`sluice data push` (docs/migrating-from-dvc.md)")
    return 0
