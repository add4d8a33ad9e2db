"""The command lines sluice answers without typer or click.

A plain `sluice run` (optionally naming stages or models) is what developers and CI
type over and over, and on a no-op run importing typer and click is a large part of
the whole process. Such a command line is recognised here and goes straight to the
command's function; anything else — any option, `-h`, an unknown command — returns
None and goes through the typer app (sluice.cli.app), which parses the same forms
the same way (tests/unit/cli/test_fast.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable


def fast_command(argv: list[str]) -> Callable[[], int] | None:
    """The command ``argv`` names, ready to run, if it is a form answered here."""
    if not argv or argv[0] != "run":
        return None
    targets = argv[1:]
    # "-..." is an option (or a typo of one), "--" ends options: typer's job.
    if any(t.startswith("-") or not t for t in targets):
        return None

    def run() -> int:
        from sluice.cli.run_cmd import run_stages

        return run_stages(targets=targets or None)

    return run
