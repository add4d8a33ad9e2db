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
    spec: Annotated[str | None, typer.Argument(
        help="The capsule spec's digest (from the store); or give --run and --stage.")
    ] = None,
    store_url: Annotated[str | None, typer.Option(
        "--store", help="The store holding the spec [default: $SLUICE_CACHE_URL]; "
                        "credentials come from the environment only.")] = None,
    scratch: Annotated[Path | None, typer.Option(
        help="An empty folder to run in, kept afterwards [default: a temporary folder, "
             "removed afterwards].")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", help="Where setup environments and logs are kept "
                            "[default: $SLUICE_CAPSULE_CACHE or ~/.cache/sluice].")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="A tier run started by `sluice tier start` (a platform step): run "
                      "the spec its manifest names for --stage.")] = None,
    stage: Annotated[str | None, typer.Option(
        "--stage", help="With --run: the stage of the tier run.")] = None,
) -> int:
    """Run the stage a capsule spec describes, in an empty folder, from the store alone.

    The stage's output goes to stderr; one line of JSON with the result (exit code,
    wall, CPU, peak memory, output hashes, where it ran) goes to stdout. Exit 0 when
    the stage succeeded (or its result was already stored), 1 when it or its setup
    failed or timed out, 2 for a bad spec or store, or a hash mismatch.

    Examples:

      SLUICE_CACHE_URL=s3://team-cache/sluice sluice stage exec 3f2a…9c

      sluice stage exec 3f2a…9c --store file:///shared/sluice --scratch /tmp/run

      sluice stage exec --run "$RUN_ID" --stage train   # a step of an exported tier

    With --run, a stage the tier does not select, already cached, or skipped for the
    budget exits 0 at once; an expensive stage whose run has a check without a result
    exits 1 (gated); a sluice other than the one that started the run exits 2.
    """
    import shutil
    import tempfile

    from sluice.errors import Interrupted, SluiceError, UsageError
    from sluice.pipeline.capsule import run_capsule
    from sluice.store import open_store
    from sluice.util.credentials import mask

    url = store_url or os.environ.get("SLUICE_CACHE_URL")
    step: tuple[int, dict[str, object]] | None = None
    try:
        if (spec is None) == (run is None) or (run is None) != (stage is None):
            raise UsageError("give either a spec digest, or --run RUN_ID and --stage NAME",
                             hint="`sluice stage exec --help` shows both forms")
        if not url or url.strip().lower() == "none":
            raise UsageError("no store to read the capsule from",
                             hint="pass --store URL or set SLUICE_CACHE_URL")
        store = open_store(url, Path.cwd())
        folder = scratch or Path(tempfile.mkdtemp(prefix="sluice-capsule-"))
        where = (cache_dir or _default_cache_dir()).absolute()
        try:
            if run is not None and stage is not None:
                import sluice
                from sluice.pipeline.tier_manifest import run_step

                step = run_step(store, run, stage, version=str(sluice.__version__),
                                scratch=folder.absolute(), cache_dir=where, log=sys.stderr)
            else:
                assert spec is not None
                result = run_capsule(store, spec, scratch=folder.absolute(), cache_dir=where,
                                     log=sys.stderr)
        finally:
            if scratch is None:
                shutil.rmtree(folder, ignore_errors=True)
    except Interrupted:
        raise
    except SluiceError as error:
        echo(f"error: {error.render()}", err=True)
        what = {"spec": spec} if run is None else {"run_id": run, "stage": stage}
        _print_line({"ok": False, **what, "error": mask(error.render())})
        return 2
    if step is not None:
        code, line = step
        _print_line(line)
        if line.get("error") or (code and line.get("reason")):
            echo(f"error: {line.get('error') or line.get('reason')}", err=True)
        return code
    _print_line(result.to_json())
    if result.error and not result.cached:
        echo(f"error: {result.error}", err=True)
    return 0 if result.ok else 1


def register(app: typer.Typer) -> None:
    app.add_typer(stage_app, name="stage")
