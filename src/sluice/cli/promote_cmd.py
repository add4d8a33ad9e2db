"""``sluice promote`` / ``approve`` / ``reject`` / ``rollback``: move model aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.output import echo, print_json

if TYPE_CHECKING:
    from sluice.db import Database
    from sluice.workspace.project import Project

ActorOption = Annotated[str | None, typer.Option(
    help="Who acts [default: from the CI system, else the OS user].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _context() -> tuple[Project, Database]:
    from sluice.registry.mirror import open_registry
    from sluice.workspace.project import load_project

    project = load_project()
    return project, open_registry(project)  # with the MLflow mirror following, if configured


def _print(outcome: object, as_json: bool, db: Database | None = None) -> int:
    from sluice.registry.mirror import notices
    from sluice.registry.promotion import Outcome

    assert isinstance(outcome, Outcome)
    for notice in notices(db) if db is not None else []:
        echo(f"warning: {notice}", err=True)
    if as_json:
        print_json(outcome.to_json())
    else:
        echo(outcome.message)
    return 0


def register(app: typer.Typer) -> None:
    @app.command("promote")
    def promote(
        model: Annotated[str, typer.Argument(help="Model name.")],
        version: Annotated[int | None, typer.Argument(help="Version [default: the latest].")
                           ] = None,
        to: Annotated[str, typer.Option("--to", help="The alias to move.")] = "staging",
        reason: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
        expect: Annotated[int | None, typer.Option(
            help="Move only if the alias still points at this version (scripts, races).")
        ] = None,
        new_alias: Annotated[bool, typer.Option(
            "--new-alias", help="Create the alias even if it looks like a slip for an "
                                "existing one (`prod` while `production` exists).")] = False,
        actor: ActorOption = None,
        as_json: JsonOption = False,
    ) -> int:
        """Move an alias to a version, if its policy allows; or open an approval request.

        The `promotion:` policy of the alias in sluice.yaml decides: gates that must
        have PASSED, an alias the version must have held first, approvals, branches
        and actors. Refusals exit with code 1 and say what is missing. An alias no
        model has yet that looks like a slip for one (`prod` while `production`
        exists) is refused with exit code 2 unless --new-alias is given.

        Examples:

          sluice promote churn --to staging

          sluice promote churn 7 --to production --reason "Q3 retrain"
        """
        from sluice.registry.promotion import _UNSET
        from sluice.registry.promotion import promote as do_promote
        from sluice.util import identity

        project, db = _context()
        outcome = do_promote(db, project.config.spec.promotion, model, version, to,
                             identity.actor(actor), reason, identity.branch(project.root),
                             _UNSET if expect is None else expect, new_alias=new_alias)
        return _print(outcome, as_json, db)

    @app.command("approve")
    def approve(request: Annotated[int, typer.Argument(help="Request id.")],
                actor: ActorOption = None, as_json: JsonOption = False) -> int:
        """Approve a pending promotion; the alias moves once enough approvals are in.

        Examples:

          sluice approve 12
        """
        from sluice.registry.promotion import approve as do_approve
        from sluice.util import identity

        project, db = _context()
        return _print(do_approve(db, project.config.spec.promotion, request,
                                 identity.actor(actor), identity.branch(project.root)),
                      as_json, db)

    @app.command("reject")
    def reject(request: Annotated[int, typer.Argument(help="Request id.")],
               reason: Annotated[str | None, typer.Option(help="Why.")] = None,
               actor: ActorOption = None, as_json: JsonOption = False) -> int:
        """Reject a pending promotion request.

        Examples:

          sluice reject 12 --reason "calibration regressed on the EU slice"
        """
        from sluice.registry.promotion import reject as do_reject
        from sluice.util import identity

        _, db = _context()
        return _print(do_reject(db, request, identity.actor(actor), reason), as_json)

    @app.command("rollback")
    def rollback(model: Annotated[str, typer.Argument(help="Model name.")],
                 alias: Annotated[str, typer.Option(help="The alias to move back.")
                                  ] = "production",
                 reason: Annotated[str | None, typer.Option(help="Why.")] = None,
                 actor: ActorOption = None, as_json: JsonOption = False) -> int:
        """Move an alias back to the version that held it before (kept in the history).

        Examples:

          sluice rollback churn --alias production --reason "latency regression"
        """
        from sluice.registry.promotion import rollback as do_rollback
        from sluice.util import identity

        project, db = _context()
        return _print(do_rollback(db, project.config.spec.promotion, model, alias,
                                  identity.actor(actor), reason), as_json, db)
