"""``sluice ui``: serve the web dashboard; ``sluice ui token add``: make a person's token."""

# No `from __future__ import annotations`: typer evaluates the annotations in register().

import ipaddress
from typing import Annotated, Any

import typer

from sluice.cli.output import echo


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _load_app() -> Any:
    try:
        from sluice.ui import app
    except ModuleNotFoundError as exc:
        from sluice.errors import UsageError

        raise UsageError(f"`sluice ui` needs {exc.name}, which is not installed",
                         hint="pip install 'sluice-ml[ui]'") from None
    return app


def register(app: typer.Typer) -> None:
    ui_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    token_app = typer.Typer(help="Identities for write actions: per-person tokens.")

    @ui_app.callback()
    def ui(
        ctx: typer.Context,
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
        read_only: Annotated[bool, typer.Option(
            "--read-only", help="Show everything, change nothing (no sign-in, no actions).")
        ] = False,
    ) -> None:
        """Serve a web dashboard of runs, budgets, gate evidence and the model registry.

        Pages and a JSON API (/api/, OpenAPI at /docs) over the same database and
        store as the CLI. Approving, rejecting, promoting and rolling back need an
        identity: a token from `sluice ui token add NAME` (or a trusted proxy's
        header, $SLUICE_UI_TRUSTED_HEADER). It listens on 127.0.0.1 unless --host
        says otherwise, which needs identities or --read-only.

        Examples:

          sluice ui

          sluice ui --host 0.0.0.0 --read-only
        """
        if ctx.invoked_subcommand is not None:
            return
        from sluice.errors import UsageError
        from sluice.registry.mirror import open_registry
        from sluice.ui.identities import Identities
        from sluice.workspace.project import load_project

        project = load_project()
        identities = Identities.load(project.state_dir)
        if not is_loopback(host) and not (identities.configured or read_only):
            raise UsageError(f"refusing to serve on {host} without identities: anyone who can "
                             "reach it could move aliases",
                             hint="add tokens with `sluice ui token add NAME`, or pass "
                                  "--read-only")
        application = _load_app().create_app(project, open_registry(project),
                                             read_only=read_only, identities=identities)
        import uvicorn

        mode = "read-only" if read_only or not identities.configured else "sign in to act"
        echo(f"sluice ui on http://{host}:{port}/ ({mode}); Ctrl-C stops it")
        uvicorn.run(application, host=host, port=port, log_level="warning")

    @token_app.command("add")
    def add(name: Annotated[str, typer.Argument(help="The person's name (the actor).")]
            ) -> int:
        """Make a token for NAME, store its salted hash, and print the token once.

        The tokens file is $SLUICE_UI_TOKENS, else .sluice/ui-tokens.json.

        Examples:

          sluice ui token add alice
        """
        from sluice.ui.identities import add_token, tokens_path
        from sluice.workspace.project import load_project

        path = tokens_path(load_project().state_dir)
        token = add_token(path, name)
        echo(f"token for {name} (shown only now; the tokens file keeps a salted hash):",
             err=True)
        echo(token)
        return 0

    ui_app.add_typer(token_app, name="token")
    app.add_typer(ui_app, name="ui")
