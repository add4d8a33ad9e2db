"""``sluice tier start|finish``: the first and last steps of a tier run on a platform.

Between them, one ``sluice stage exec --run RUN_ID --stage NAME`` step per stage
(sluice.cli.stage_cmd). See docs/tier-run.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo, print_json

tier_app = typer.Typer(help="A tier run in steps, for the platforms (`sluice export`).",
                       no_args_is_help=True)


def _version() -> str:
    import sluice

    return str(sluice.__version__)


@tier_app.command("start")
def start(
    tier: Annotated[str, typer.Option(help="The tier of sluice.yaml to run.")],
    run_id: Annotated[str, typer.Option(
        "--run-id", help="The platform run's id; every later step names it.")],
    commit: Annotated[str | None, typer.Option(
        help="The commit the run is for; must be the one checked out (or, with --clone, "
             "the one to check out).")] = None,
    clone: Annotated[str | None, typer.Option(
        help="No checkout here: clone this repository URL and check out --commit first "
             "(credentials: git's own, or $SLUICE_GIT_TOKEN from a secret).")] = None,
    base: Annotated[str | None, typer.Option(
        help="For `select: affected`: compare with this revision (`auto`: from the CI "
             "environment), as `sluice run --base`.")] = None,
    allow_over_budget: Annotated[bool, typer.Option(
        "--allow-over-budget", help="Start even if the estimate exceeds a budget.")] = False,
    actor: Annotated[str | None, typer.Option(
        help="Who runs this, for the ledger [default: from CI, else the OS user].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")
                       ] = False,
) -> int:
    """Plan the tier in this checkout, check its budget, and store the code snapshot,
    one capsule spec per selected stage and the run's manifest in the shared store.

    Exit 0 when the run may go on (also when this run id was started already, for
    the same tier and commit), 2 for bad usage, 3 when a budget refuses it.

    Example:

      SLUICE_CACHE_URL=s3://team-cache/sluice sluice tier start --tier merge \\
          --run-id "$RUN_ID" --commit "$GIT_SHA" --base auto
    """
    import shutil
    import tempfile

    from sluice.errors import UsageError
    from sluice.orchestrate.tier_run import clone_commit

    if clone is None:
        return _start(tier, run_id, commit, base, allow_over_budget, actor, as_json, None)
    if commit is None:
        raise UsageError("--clone needs --commit: which commit to run",
                         hint="pass the commit SHA as a runtime parameter of the pipeline")
    folder = Path(tempfile.mkdtemp(prefix="sluice-start-"))
    try:
        return _start(tier, run_id, commit, base, allow_over_budget, actor, as_json,
                      clone_commit(clone, commit, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start(tier: str, run_id: str, commit: str | None, base: str | None,
           allow_over_budget: bool, actor: str | None, as_json: bool,
           checkout: Path | None) -> int:
    from sluice.orchestrate.tier_plan import TierRequest
    from sluice.orchestrate.tier_run import start_tier
    from sluice.workspace.project import load_project

    project = load_project(checkout)
    warnings: list[str] = []
    if base == "auto":
        from sluice.ci.revision import explain_base

        resolved = explain_base(project.root,
                                default_branch=project.config.spec.ci.default_branch)
        base, warnings = resolved.commit, [resolved.warning] if resolved.warning else []
    request = TierRequest(tier=tier, base=base, allow_over_budget=allow_over_budget,
                          actor=actor, warnings=warnings)
    manifest, existed = start_tier(project, request, run_id, version=_version(),
                                   commit=commit)
    if as_json:
        print_json({**manifest.to_json(), "existed": existed})
        return 0
    if existed:
        echo(f"tier run {run_id} was started already (tier `{manifest.tier}`); unchanged")
    for name, entry in manifest.stages.items():
        echo(f"  {entry.action:<7} {name}" + (f": {entry.reason}" if entry.reason else ""))
    echo(f"tier run {run_id}: tier `{manifest.tier}` at "
         f"{(manifest.commit or 'an uncommitted tree')[:12]}, sluice {manifest.version}")
    return 0


@tier_app.command("finish")
def finish(
    run_id: Annotated[str, typer.Option("--run-id", help="The platform run's id.")],
    store_url: Annotated[str | None, typer.Option(
        "--store", help="The run's shared store [default: $SLUICE_CACHE_URL]; credentials "
                        "come from the environment only.")] = None,
    workdir: Annotated[Path | None, typer.Option(
        help="An empty folder to materialise the code snapshot in and work in, kept "
             "afterwards [default: a temporary folder, removed afterwards].")] = None,
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", help="Copy the run's report (HTML, Markdown, JSON) here.")] = None,
    actor: Annotated[str | None, typer.Option(
        help="Who runs this, for the ledger [default: from CI, else as at start].")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON on stdout.")] = False,
) -> int:
    """End a platform tier run like a local one: settle every stage from the store,
    compute the gates, write the ledger, register and promote per the tier, write the
    report. Run it even when steps failed. The database is $SLUICE_DATABASE_URL.

    Exit codes as `sluice run --tier`: 0 passed, 1 a stage or gate failed, 3 budget,
    4 a gate was INCONCLUSIVE; 2 for a bad run id or manifest.

    Example:

      SLUICE_CACHE_URL=s3://team-cache/sluice SLUICE_DATABASE_URL=postgresql://… \\
          sluice tier finish --run-id "$RUN_ID" --report-dir report
    """
    import shutil
    import tempfile

    from sluice.cli.run_cmd import show_result
    from sluice.errors import UsageError
    from sluice.orchestrate.tier_run import finish_tier
    from sluice.store import open_store

    url = store_url or os.environ.get("SLUICE_CACHE_URL")
    if not url or url.strip().lower() == "none":
        raise UsageError("no store to read the tier run from",
                         hint="pass --store URL or set SLUICE_CACHE_URL")
    folder = workdir or Path(tempfile.mkdtemp(prefix="sluice-finish-"))
    try:
        store = open_store(url, Path.cwd())
        project, plan, result = finish_tier(store, run_id, folder.absolute(),
                                            version=_version(), actor=actor)
        if report_dir is not None and result.report_dir is not None:
            shutil.copytree(result.report_dir, report_dir, dirs_exist_ok=True)
            result.report_dir = report_dir
        return show_result(project, plan, result, [], as_json)
    finally:
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


def register(app: typer.Typer) -> None:
    app.add_typer(tier_app, name="tier")
