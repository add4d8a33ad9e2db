"""``sluice gc``: remove store objects and local state nothing references."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sluice.cli.output import echo, print_json, size


def _grace(value: str) -> float:
    from sluice.config.schema_types import parse_duration
    from sluice.errors import UsageError

    if value.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--grace {value!r}: must be {exc}",
                         hint="e.g. --grace 24h (the default), --grace 2d, --grace 0") from None


def print_report(report: Any) -> None:
    verb = "would remove" if report.dry_run else "removed"
    if report.dry_run:
        echo("dry run: nothing is deleted")
    kept = ", ".join(f"{n} from {why}" for why, n in sorted(report.kept.items()))
    runs = "run" if report.keep_runs == 1 else f"{report.keep_runs} runs"
    echo(f"kept: {kept or 'nothing is referenced'} (the last {runs} of each tier)")
    for revision in report.revisions:
        echo(f"  sluice.lock at {revision}")
    for sweep in report.stores:
        echo(f"{sweep.role} store {sweep.store}: {sweep.objects} objects, {size(sweep.bytes)}; "
             f"{verb} {sweep.removed_objects} objects ({size(sweep.removed_bytes)}) and "
             f"{sweep.removed_records} run records")
        if sweep.spared_young:
            echo(f"  spared {sweep.spared_young} unreferenced objects "
                 f"({size(sweep.spared_young_bytes)}) younger than the grace period")
    state = report.state
    for what, n in sorted(state.removed.items()):
        echo(f".sluice: {verb} {n} {what}")
    echo(f".sluice: {size(state.before_bytes)} → {size(state.after_bytes)}"
         + (" (estimated)" if report.dry_run else ""))


def register(app: typer.Typer) -> None:
    @app.command("gc")
    def gc(
        rev: Annotated[list[str] | None, typer.Option(
            "--rev", help="Also keep the data sluice.lock pins at this revision "
                          "(repeatable). The workspace's sluice.lock is always kept.")] = None,
        all_branches: Annotated[bool, typer.Option(
            "--all-branches", help="Keep what sluice.lock pins on every branch "
                                   "(local and remote-tracking).")] = False,
        keep_runs: Annotated[int, typer.Option(
            help="Keep what the last N runs of each tier used.")] = 10,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Show what would be removed, and its size; delete nothing.")
        ] = False,
        shared: Annotated[bool, typer.Option(
            "--shared", help="Also collect the shared store (`storage: cache:`), sparing "
                             "what is younger than --grace.")] = False,
        grace: Annotated[str, typer.Option(
            help="On the shared store, never remove anything younger than this: runs on "
                 "other machines may still be writing.")] = "24h",
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> int:
        """Remove store objects, run records and .sluice state nothing references.

        Kept: every registry version (and so every version an alias ever held), the
        data sluice.lock pins (in the workspace and at --rev / --all-branches), this
        checkout's outputs, and what the last --keep-runs runs of each tier used.
        Refused while a run is using the store.

        Examples:

          sluice gc --dry-run

          sluice gc --rev main --rev release-1.2 --keep-runs 5

          sluice gc --shared --all-branches --grace 48h --json
        """
        from sluice.orchestrate.gc import GcOptions, collect_garbage
        from sluice.workspace.project import load_project

        options = GcOptions(revs=list(rev or []), all_branches=all_branches,
                            keep_runs=keep_runs, dry_run=dry_run, shared=shared,
                            grace_s=_grace(grace))
        report = collect_garbage(load_project(), options)
        if as_json:
            print_json(report.to_json())
        else:
            print_report(report)
        return 0
