"""``sluice data status [--json]`` without typer or click, and its one rendering.

Status is what people and CI scripts ask again and again; on a warm checkout
the answer costs less than importing typer. :func:`sluice.cli.fast.fast_command`
sends the plain forms here; ``sluice.cli.data_cmd.status`` (the typer command,
for ``--help`` and anything unusual) renders through :func:`show_status` too,
so both print the same. Nothing here imports yaml, pydantic or SQLAlchemy when
sluice.lock is as sluice writes it and no DVC pointer file is around: the status
does not need sluice.yaml's config (see :class:`sluice.data.status.Checkout`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sluice.cli.output import echo, print_json

if TYPE_CHECKING:
    from sluice.data.status import DataStatus


def status_command(as_json: bool) -> Callable[[], int]:
    def status() -> int:
        return run_status(as_json)

    return status


def run_status(as_json: bool) -> int:
    from sluice.data.status import Checkout, data_status
    from sluice.workspace.root import find_root

    return show_status(data_status(Checkout(find_root())), as_json)


def show_status(states: list[DataStatus], as_json: bool) -> int:
    """Print the states (a table, or JSON); exit 1 if any pin differs from the workspace."""
    if as_json:
        print_json([{"path": s.path, "state": s.state, "locked": s.locked_hash,
                     "current": s.current_hash, "source": s.source} for s in states])
    elif not states:
        echo("no data pinned (see `sluice data add`)")
    else:
        for item in states:
            echo(f"  {item.state:<10} {item.path}  ({item.source})")
        changed = [s for s in states if s.state != "unchanged"]
        fixes = []
        if any(s.source == "sluice.lock" for s in changed):
            fixes.append("`sluice data checkout` restores those of sluice.lock "
                         "(`sluice data add` re-pins)")
        if any(s.source != "sluice.lock" for s in changed):
            fixes.append("`dvc checkout` restores those of DVC (`dvc add` re-pins)")
        echo(f"{len(states) - len(changed)} unchanged, {len(changed)} differ from their pins"
             + ("; " + "; ".join(fixes) if fixes else ""))
    return 0 if all(s.state == "unchanged" for s in states) else 1
