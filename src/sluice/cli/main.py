"""Entry point: the typer app, sub-command registration and the one place exit codes live.

Exit codes (documented in the README):
0 success · 1 a stage/check failed · 2 bad usage or configuration ·
3 refused by a budget · 4 a gate was inconclusive · 130 interrupted.
"""

from __future__ import annotations

import gc
import signal
import sys

import typer

from sluice.cli.lazy import LazyGroup
from sluice.errors import (
    BudgetRefused,
    ConfigError,
    DatabaseError,
    DataInvalid,
    Interrupted,
    PromotionRefused,
    PublishError,
    ResourceError,
    SluiceError,
    StageFailed,
    StoreError,
    UsageError,
)

EXIT_CODES: dict[type[SluiceError], int] = {
    StageFailed: 1,
    StoreError: 1,
    ConfigError: 2,
    UsageError: 2,
    ResourceError: 2,
    BudgetRefused: 3,
    PromotionRefused: 1,
    DatabaseError: 1,
    DataInvalid: 1,
    PublishError: 1,
    Interrupted: 130,
}

HELP = """\
sluice: tiered, budgeted CI/CD for machine learning.

Describe your pipeline in sluice.yaml; sluice runs only the stages whose
inputs changed and restores everything else from a content-addressed cache.

Examples:

  sluice init                      # write a commented starter sluice.yaml

  sluice init --example churn      # copy the example project here

  sluice plan                      # what would run, and why

  sluice run --jobs 4              # run stale stages, 4 CPU slots

  sluice status                    # which stages are stale and why

  sluice affected --base main      # which stages and models a change touches

  sluice run --tier pr --base main # the pull-request tier: checks, smoke training

  sluice report                    # the last run's report: stages, costs, verdicts

  sluice promote churn --to production   # move an alias, as its policy allows

  sluice data validate             # datasets against their schema files

  sluice data drift customers --base main   # column drift against the base

  sluice ci generate github --write         # the CI file that runs the tiers
"""

# With rich installed, typer escapes the brackets of "[default: …]" for rich markup
# even when markup is off (rich_markup_mode=None), and `--help` shows "\[default: …]".
# sluice renders no help through rich, so typer is told rich is absent.
typer.core.HAS_RICH = False

# Commands are not registered here: LazyGroup lists them from sluice.cli.commands and
# imports a command's module only when it runs, so `sluice --help` imports none of them.
app = typer.Typer(cls=LazyGroup, help=HELP, no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})


def _print_version(value: bool) -> None:
    if value:
        from sluice.util.version import DISTRIBUTION, installed_version

        sys.stdout.write(f"sluice {installed_version() or '(uninstalled source tree)'} "
                         f"({DISTRIBUTION})\n")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", is_eager=True,
                                          callback=_print_version,
                                          help="Print the installed version and exit.")) -> None:
    pass


def exit_code_for(error: SluiceError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    # CI systems cancel jobs with SIGTERM: stop stages the same way as Ctrl-C.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    # A short-lived command: objects made while importing live to the end, so the
    # collector need not scan them again and again (≈10 % of a large plan).
    gc.freeze()
    try:
        code = app(standalone_mode=False)
    except SluiceError as error:
        from sluice.util.credentials import mask

        sys.stderr.write(f"error: {mask(error.render())}\n")
        sys.exit(exit_code_for(error))
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as error:
        # Click's own exceptions (bad options, --help's exit): typer vendors
        # click, so they are recognised by shape rather than by class.
        if hasattr(error, "show") and hasattr(error, "exit_code"):
            error.show()
            sys.exit(2 if error.exit_code not in (0, 1) else error.exit_code)
        if hasattr(error, "exit_code"):
            sys.exit(error.exit_code)
        if type(error).__name__ == "Abort":
            sys.stderr.write("interrupted\n")
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
