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
    from sluice.data.versioning import data_checkout, remote_store, select_pins, transfer
    from sluice.workspace.project import load_project, shared_read_only

    project = load_project()
    if direction == "push" and shared_read_only():
        from sluice.errors import UsageError

        raise UsageError("$SLUICE_CACHE_READ_ONLY is set: this job reads the shared store "
                         "and never writes it",
                         hint="push from a job with write access (not a pull-request job), "
                              "or unset SLUICE_CACHE_READ_ONLY")
    pins = select_pins(project, paths)
    from sluice.config.lockfile import DVC_PREFIX

    if direction == "push" and (dvc := [p for p in pins if p.hash.startswith(DVC_PREFIX)]):
        echo(f"push: skipping {len(dvc)} path(s) still pinned by DVC's md5 (e.g. "
             f"{dvc[0].path}): `sluice data pull` imports them first", err=True)
        pins = [pin for pin in pins if pin not in dvc]
    if direction == "pull":  # pins imported from DVC without their bytes: from its remote
        from sluice.data.dvc_import import pull_dvc_pins

        dvc = [pin for pin in pins if pin.hash.startswith(DVC_PREFIX)]
        pulled = pull_dvc_pins(project, dvc)
        if pulled:
            echo(f"pull: {len(pulled)} path(s) fetched from DVC's cache or remote "
                 "(md5-checked) and re-pinned in sluice.lock; commit it")
        rest = [pin for pin in pins if pin not in dvc]
        from sluice.store.layered import local_layer

        if dvc and not local_layer(project.store).missing([pin.hash for pin in rest]):
            if checkout:  # everything is here now: no other store to ask
                _say_restored(data_checkout(project, [pin.path for pin in [*rest, *pulled]]))
            return 0
        pins = rest + pulled
    other = remote_store(project, remote)
    source, target = (project.store, other) if direction == "push" else (other, project.store)
    copied = transfer(source, target, pins,
                      lambda done, total: echo(f"  {done}/{total} objects", err=True)
                      if done == total or done % 500 == 0 else None)
    echo(f"{direction}: {copied} object(s) copied, {len(pins)} pinned path(s) complete")
    if checkout:
        _say_restored(data_checkout(project, [pin.path for pin in pins]))
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
