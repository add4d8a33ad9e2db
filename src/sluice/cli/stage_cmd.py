"""``sluice stage exec``: run one stage capsule from a spec in the store (on a worker)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo

stage_app = typer.Typer(help="Stage capsules: run one stage anywhere that reaches the store.",
                        no_args_is_help=True)

CACHE_DIR_ENV = "SLUICE_CAPSULE_CACHE"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get(CACHE_DIR_ENV) or os.path.join(base, "sluice"))


def _print_line(value: dict[str, object]) -> None:
    from sluice.util.credentials import mask

    sys.stdout.write(mask(json.dumps(value, sort_keys=True)) + "\n")
    sys.stdout.flush()


@stage_app.command("exec")
def exec_(
    spec: Annotated[str, typer.Argument(help="The capsule spec's digest (from the store).")],
    store_url: Annotated[str | None, typer.Option(
        "--store", help="The store holding the spec [default: $SLUICE_CACHE_URL]; "
                        "credentials come from the environment only.")] = None,
    scratch: Annotated[Path | None, typer.Option(
        help="An empty folder to run in, kept afterwards [default: a temporary folder, "
             "removed afterwards].")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", help="Where setup environments and logs are kept "
                            "[default: $SLUICE_CAPSULE_CACHE or ~/.cache/sluice].")] = None,
) -> int:
    """Run the stage a capsule spec describes, in an empty folder, from the store alone.

    The stage's output goes to stderr; one line of JSON with the result (exit code,
    wall, CPU, peak memory, output hashes, where it ran) goes to stdout. Exit 0 when
    the stage succeeded (or its result was already stored), 1 when it or its setup
    failed or timed out, 2 for a bad spec or store, or a hash mismatch.

    Examples:

      SLUICE_CACHE_URL=s3://team-cache/sluice sluice stage exec 3f2a…9c

      sluice stage exec 3f2a…9c --store file:///shared/sluice --scratch /tmp/run
    """
    import shutil
    import tempfile

    from sluice.errors import Interrupted, SluiceError, UsageError
    from sluice.pipeline.capsule import run_capsule
    from sluice.store import open_store
    from sluice.util.credentials import mask

    url = store_url or os.environ.get("SLUICE_CACHE_URL")
    try:
        if not url or url.strip().lower() == "none":
            raise UsageError("no store to read the capsule from",
                             hint="pass --store URL or set SLUICE_CACHE_URL")
        store = open_store(url, Path.cwd())
        folder = scratch or Path(tempfile.mkdtemp(prefix="sluice-capsule-"))
        try:
            result = run_capsule(store, spec, scratch=folder.absolute(),
                                 cache_dir=(cache_dir or _default_cache_dir()).absolute(),
                                 log=sys.stderr)
        finally:
            if scratch is None:
                shutil.rmtree(folder, ignore_errors=True)
    except Interrupted:
        raise
    except SluiceError as error:
        echo(f"error: {error.render()}", err=True)
        _print_line({"ok": False, "spec": spec, "error": mask(error.render())})
        return 2
    _print_line(result.to_json())
    if result.error and not result.cached:
        echo(f"error: {result.error}", err=True)
    return 0 if result.ok else 1


def register(app: typer.Typer) -> None:
    app.add_typer(stage_app, name="stage")
