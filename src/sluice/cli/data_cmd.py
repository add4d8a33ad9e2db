"""``sluice data``: pin data outside git in sluice.lock, check it, restore it, share it."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.output import echo, size

data_app = typer.Typer(help="Data: version it outside git (sluice.lock), validate it against a "
                              "schema, compare it with a reference for drift.",
                       no_args_is_help=True)

LinkOption = Annotated[bool | None, typer.Option(
    "--link/--copy",
    help="Make the data files hard links to read-only objects in the store (no copy), or "
         "copies [default: `storage: link:` in sluice.yaml, else copies]. Linked files are "
         "read-only: replace them, never edit them in place (docs/data.md).")]

RemoteOption = Annotated[str | None, typer.Option(
    help="Remote store: a folder or an s3://, gs://, az:// URL [default: $SLUICE_REMOTE, "
         "`remote:` in sluice.yaml, or `storage: cache:`].")]


@data_app.command("add")
def add(paths: Annotated[list[str], typer.Argument(help="Files or folders to pin.")],
        link: LinkOption = None) -> int:
    """Hash data, store it in the cache, pin it in sluice.lock and git-ignore it.

    Commit sluice.lock and .gitignore afterwards: the data change is then a git change.

    Examples:

      sluice data add data/events

      sluice data add --link data/images   # hard links, no second copy on disk

      sluice data add data/raw.csv data/labels.csv && git add sluice.lock .gitignore
    """
    from sluice.data.versioning import data_add
    from sluice.workspace.project import load_project

    for pin in data_add(load_project(), paths, lambda p: echo(f"hashing {p} ...", err=True),
                        link=link, on_notice=lambda m: echo(f"note: {m}", err=True)):
        echo(f"pinned {pin.path}: {pin.nfiles} file(s), {size(pin.size)}, {pin.hash[:16]}")
    echo("next: git add sluice.lock .gitignore && git commit")
    return 0


@data_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> int:
    """Compare pinned data in the workspace with its pins; exit 1 if any differs.

    Pins are those of sluice.lock and of DVC's `.dvc` files and `dvc.lock`
    (checked in DVC's md5). Files whose size and time are unchanged are not re-read.

    Examples:

      sluice data status

      sluice data status --json
    """
    from sluice.cli.fast_data import run_status

    return run_status(as_json)


@data_app.command("checkout")
def checkout(paths: Annotated[list[str] | None, typer.Argument(
        help="Pinned paths to restore [default: all].")] = None,
        link: LinkOption = None) -> int:
    """Restore pinned data from the store to the version in sluice.lock.

    Examples:

      sluice data checkout

      git checkout other-branch && sluice data checkout data/events
    """
    from sluice.data.versioning import data_checkout
    from sluice.workspace.project import load_project

    _say_restored(data_checkout(load_project(), paths, link=link,
                                on_notice=lambda m: echo(f"note: {m}", err=True)))
    return 0


def _say_restored(restored: list[str]) -> None:
    for path in restored:
        echo(f"restored {path}")
    echo(f"{len(restored)} restored" if restored else "all pinned data already matches")


def _transfer(direction: str, remote: str | None, paths: list[str] | None,
              checkout: bool = False) -> int:
    from sluice.data.sync import data_pull, data_push
    from sluice.workspace.project import load_project

    def progress(done: int, total: int) -> None:
        if done == total or done % 500 == 0:
            echo(f"  {done}/{total} objects", err=True)

    project = load_project()
    done = (data_push(project, remote, paths, progress) if direction == "push" else
            data_pull(project, remote, paths, checkout=checkout, on_progress=progress))
    if done.skipped_dvc:
        echo(f"push: skipping {len(done.skipped_dvc)} path(s) still pinned by DVC's md5 "
             f"(e.g. {done.skipped_dvc[0]}): `sluice data pull` imports them first", err=True)
    if done.from_dvc:
        echo(f"pull: {len(done.from_dvc)} path(s) fetched from DVC's cache or remote "
             "(md5-checked) and re-pinned in sluice.lock; commit it")
    echo(f"{direction}: {done.copied} object(s) copied, {done.complete} pinned path(s) "
         "complete")
    if done.restored is not None:
        _say_restored(done.restored)
    return 0


@data_app.command("push")
def push(paths: Annotated[list[str] | None, typer.Argument(help="Pinned paths.")] = None,
         remote: RemoteOption = None) -> int:
    """Copy pinned data the remote store lacks to it.

    Examples:

      sluice data push

      sluice data push --remote /mnt/team/sluice-store
    """
    return _transfer("push", remote, paths)


@data_app.command("pull")
def pull(paths: Annotated[list[str] | None, typer.Argument(help="Pinned paths.")] = None,
         remote: RemoteOption = None,
         checkout: Annotated[bool, typer.Option(
             "--checkout/--no-checkout",
             help="Also restore the pulled data into the workspace, as `sluice data "
                  "checkout` does; --no-checkout only fills the local store.")] = True,
         ) -> int:
    """Fetch pinned data missing from the local store and check it out into the workspace.

    `sluice run` fetches the data its stages read by itself; pull fetches ahead
    (e.g. to look at the data), or everything pinned.

    Examples:

      sluice data pull

      sluice data pull data/events --no-checkout   # the local store only
    """
    return _transfer("pull", remote, paths, checkout=checkout)


def register(app: typer.Typer) -> None:
    from sluice.cli import drift_cmd, validate_cmd

    validate_cmd.register(data_app)
    drift_cmd.register(data_app)
    app.add_typer(data_app, name="data")
