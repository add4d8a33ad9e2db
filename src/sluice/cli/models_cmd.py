"""``sluice models``: list, show, history and pull registered model versions.

typer is imported only in :func:`register`, so the fast path (sluice.cli.fast)
answers `sluice models show REF [--json]` through :func:`show_version` alone.
"""

# No `from __future__ import annotations`: the typer annotations inside register()
# are evaluated there, where typer is imported, and not looked up in this module.

import time
from typing import TYPE_CHECKING, Annotated, Any

from sluice.cli.output import echo, print_json

if TYPE_CHECKING:
    import typer

def _db() -> tuple[Any, Any]:
    from sluice.db import open_project_database
    from sluice.workspace.project import load_project

    project = load_project()
    return project, open_project_database(project)


def _from(version: int | None) -> str:
    """The version an alias moved from; "(none)" when the move created it."""
    return "(none)" if version is None else f"v{version}"


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``churn``, ``churn:3`` or ``churn@production``."""
    from sluice.errors import UsageError

    if "@" in ref:
        model, alias = ref.split("@", 1)
        return model, None, alias
    if ":" in ref:
        model, number = ref.split(":", 1)
        if not number.isdigit():
            raise UsageError(f"`{ref}` is not MODEL:VERSION", hint="e.g. churn:3")
        return model, int(number), None
    return ref, None, None


def show_version(ref: str, as_json: bool = False) -> int:
    """`sluice models show REF [--json]`; the exit code."""
    from sluice.db.read import open_project_reader
    from sluice.registry.versions import get_version
    from sluice.workspace.project import load_project

    model, number, alias = parse_ref(ref)
    # A plain read: on a current SQLite file it needs no SQLAlchemy (sluice.db.read).
    version = get_version(open_project_reader(load_project()), model, number, alias)
    if as_json:
        print_json(version.to_json())
        return 0
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(version.created_at))
    echo(f"{version.model} version {version.version}: {version.verdict or 'no gates'}")
    echo(f"  artifact  {version.artifact_path} ({version.artifact_hash[:16]})")
    echo(f"  created   {when} UTC by {version.creator}")
    lineage = version.lineage
    echo(f"  lineage   commit {str(lineage.get('commit'))[:10]} on {lineage.get('branch')}, "
         f"tier {lineage.get('tier')}, run {lineage.get('run_id')}")
    for name, value in version.metrics.items():
        echo(f"  metric    {name} = {value:.4g}")
    for gate in version.gates:
        where = f" [{gate['slice']}]" if gate.get("slice") else ""
        echo(f"  gate      {gate['verdict']:<12} {gate['metric']} {gate['rule']}{where}")
    return 0


def register(app: "typer.Typer") -> None:
    import typer

    models_app = typer.Typer(help="The model registry: versions, aliases and their history.",
                             no_args_is_help=True)
    JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

    @models_app.command("list")
    def list_(as_json: JsonOption = False) -> int:
        """Every registered model with its latest version and aliases.

        Examples:

          sluice models list
        """
        from sluice.registry.versions import list_models

        _, db = _db()
        found = list_models(db)
        if as_json:
            print_json(found)
            return 0
        if not found:
            echo("no models registered yet (tiers with `register: true` register them)")
        for item in found:
            aliases = ", ".join(f"{a}→v{v}" for a, v in sorted(item["aliases"].items()))
            echo(f"{item['model']:<20} latest v{item['latest']} ({item['versions']} versions)"
                 f"  {aliases}")
        return 0

    @models_app.command("show")
    def show(ref: Annotated[str, typer.Argument(help="MODEL, MODEL:VERSION or MODEL@ALIAS.")],
             as_json: JsonOption = False) -> int:
        """One version with its lineage, metrics and gate verdicts (default: the latest).

        Examples:

          sluice models show churn@production

          sluice models show churn:3 --json
        """
        return show_version(ref, as_json)

    @models_app.command("history")
    def history_(model: Annotated[str, typer.Argument(help="Model name.")],
                 alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
                 as_json: JsonOption = False) -> int:
        """Every alias move: from, to, who, when, why, and the evidence.

        Examples:

          sluice models history churn --alias production
        """
        from sluice.registry.versions import history

        _, db = _db()
        events = history(db, model, alias)
        if as_json:
            print_json(events)
            return 0
        if not events:
            echo(f"no alias of `{model}` has moved yet")
        for e in events:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
            echo(f"{when}  {e['alias']:<12} {_from(e['from'])} → v{e['to']}  {e['kind']:<9} "
                 f"by {e['actor']}" + (f": {e['reason']}" if e["reason"] else ""))
        return 0

    @models_app.command("requests")
    def requests(model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
                 as_json: JsonOption = False) -> int:
        """Pending promotion requests, waiting for `sluice approve` or `sluice reject`.

        Examples:

          sluice models requests churn
        """
        from sluice.registry.promotion import pending_requests

        _, db = _db()
        found = pending_requests(db, model)
        if as_json:
            print_json(found)
            return 0
        if not found:
            echo("no pending promotion requests")
        for item in found:
            echo(f"request {item['id']}: {item['model']} v{item['version']} → {item['alias']} "
                 f"asked by {item['requester']}; approvals: {', '.join(item['approvals']) or '-'}")
        return 0

    @models_app.command("pull")
    def pull(ref: Annotated[str, typer.Argument(help="MODEL@ALIAS, MODEL:VERSION or MODEL.")],
             output: Annotated[str, typer.Option("--output", "-o", help="Where to write it.")],
             as_json: JsonOption = False) -> int:
        """Copy a version's artifact out of the store, checking its hash.

        Examples:

          sluice models pull churn@production -o /tmp/churn.pkl
        """
        from pathlib import Path

        from sluice.registry.pull import pull_artifact
        from sluice.registry.versions import get_version

        project, db = _db()
        model, number, alias = parse_ref(ref)
        version = get_version(db, model, number, alias)
        pull_artifact(project.store, version.artifact_hash, Path(output))
        if as_json:
            print_json({"model": model, "version": version.version, "path": output,
                        "artifact_hash": version.artifact_hash})
        else:
            echo(f"wrote {output}: {model} version {version.version} "
                 f"({version.artifact_hash[:16]})")
        return 0

    @models_app.command("mirror")
    def mirror(model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
               check: Annotated[bool, typer.Option(
                   "--check", help="Only compare; exit 1 if the registries differ.")] = False,
               as_json: JsonOption = False) -> int:
        """Sync the MLflow mirror now (`mirror: mlflow:` in sluice.yaml), or check it.

        Every version (with its artifact, lineage and verdicts as tags) and every
        alias is copied to MLflow; a sync that failed earlier (server down) is caught
        up. With --check nothing is written: each difference is listed, and the exit
        code is 1 when there is any (0 when in sync).

        Examples:

          sluice models mirror

          sluice models mirror churn --check --json
        """
        from sluice.registry.mirror import check_all, sync_all

        project, db = _db()
        if check:
            drift = check_all(project, db, model)
            if as_json:
                print_json({"in_sync": not drift, "drift": drift})
            else:
                for item in drift:
                    echo(f"drift  {item['model']}: {item['detail']}")
                echo("in sync" if not drift else f"{len(drift)} difference(s); "
                     "`sluice models mirror` syncs MLflow to sluice")
            return 1 if drift else 0
        results = sync_all(project, db, model)
        if as_json:
            print_json(results)
            return 0
        if not results:
            echo("no models registered yet: nothing to mirror")
        for item in results:
            caught = " (caught up)" if item["was_pending"] is not None else ""
            echo(f"{item['model']}: " + ("; ".join(item["done"]) or "in sync") + caught)
        return 0

    app.add_typer(models_app, name="models")
