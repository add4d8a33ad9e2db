"""The command lines sluice answers without typer or click.

A plain `sluice run` (optionally naming stages or models) is what developers and CI
type over and over, and `sluice models show REF [--json]` is what deployment scripts
ask once per process; on a no-op run or a one-shot read, importing typer and click is
a large part of the whole process. Such a command line is recognised here and goes straight to the
command's function; anything else — any option, `-h`, an unknown command — returns
None and goes through the typer app (sluice.cli.app), which parses the same forms
the same way (tests/unit/cli/test_fast.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable


def fast_command(argv: list[str]) -> Callable[[], int] | None:
    """The command ``argv`` names, ready to run, if it is a form answered here."""
    # "-..." is an option (or a typo of one), "--" ends options: typer's job.
    if not argv or any((a.startswith("-") and a != "--json") or not a for a in argv):
        return None
    if argv[0] == "run" and "--json" not in argv:
        targets = argv[1:]

        def run() -> int:
            from sluice.cli.run_cmd import run_stages

            return run_stages(targets=targets or None)

        return run
    rest = argv[2:]
    if argv[:2] == ["data", "status"] and rest in ([], ["--json"]):
        from sluice.cli.fast_data import status_command

        return status_command(as_json=rest == ["--json"])
    refs = [a for a in rest if a != "--json"]
    if argv[:2] == ["models", "show"] and len(refs) == 1 and len(rest) - len(refs) <= 1:

        def show() -> int:
            from sluice.cli.models_cmd import show_version

            return show_version(refs[0], as_json="--json" in rest)

        return show
    return None
