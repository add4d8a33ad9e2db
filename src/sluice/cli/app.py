"""The typer app: `sluice --help`'s text, --version, and the lazily loaded commands.

Only imported when sluice.cli.fast does not answer the command line itself.
"""

from __future__ import annotations

import sys

import typer

from sluice.cli.lazy import LazyGroup

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
