"""Helpers for the unit tests: write a project into a temporary folder and load it."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

from sluice.config.base import Config
from sluice.config.load import load_config
from sluice.errors import ConfigError, ConfigErrors
from sluice.pipeline.base import RunResult, StageOutcome
from sluice.workspace.graph import Graph, build_graph
from sluice.workspace.project import Project


def write_project(root: Path, config: str, files: dict[str, str] | None = None) -> Path:
    """``root/sluice.yaml`` holding ``config`` (dedented) plus any other ``files``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sluice.yaml").write_text(textwrap.dedent(config), encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def load(root: Path, config: str, files: dict[str, str] | None = None) -> Config:
    return load_config(write_project(root, config, files))


def load_graph(root: Path, config: str,
               files: dict[str, str] | None = None) -> tuple[Config, Graph]:
    cfg = load(root, config, files)
    return cfg, build_graph(cfg)


def problems(root: Path, config: str, files: dict[str, str] | None = None) -> list[ConfigError]:
    """Every problem loading and graphing reports; fails if there is none."""
    try:
        load_graph(root, config, files)
    except ConfigErrors as exc:
        return exc.errors
    except ConfigError as exc:
        return [exc]
    raise AssertionError("expected the config to be rejected")


def committed_project(root: Path, config: str, files: dict[str, str] | None = None) -> Project:
    """``write_project`` in the git repository ``root``, committed, loaded."""
    from sluice.workspace.project import load_project
    from tests.conftest import git

    write_project(root, config, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return load_project(root)


def capsule_spec(project: Project, stage: str, run_id: str = "r1", *, pinned: bool = True,
                 setup: str | None = None) -> dict[str, Any]:
    """The capsule spec an executor named `test` would send for ``stage``: ``pinned``,
    to the inputs it would run on now; otherwise resolved when the capsule starts."""
    from sluice.pipeline.capsule import build_spec
    from sluice.pipeline.fingerprint import RunContext
    from sluice.pipeline.plan import decide

    decision = decide(project, stage, RunContext(), force=True, known_outputs={}) \
        if pinned else None
    return build_spec(project, stage, RunContext(), run_id, decision=decision, setup=setup,
                      executor="test")


def stored_spec(project: Project, stage: str, run_id: str = "r1", *, pinned: bool = True,
                setup: str | None = None, **changes: Any) -> str:
    """``capsule_spec`` with ``changes``, put in the project's store: its digest."""
    from sluice.pipeline.capsule import put_spec

    spec = capsule_spec(project, stage, run_id, pinned=pinned, setup=setup)
    spec.update(changes)
    return put_spec(project, spec)


def recorded_result(project: Project, *stages: str) -> RunResult:
    """As if ``stages`` had just run: the outputs they have stored and recorded."""
    from sluice.workspace.outputs import save_outputs
    from sluice.workspace.records import write_record

    outcomes = []
    for name in stages:
        outs = {n: p for n, p in project.config.stages[name].outs.items()
                if (project.root / p).exists()}
        recorded = save_outputs(project, replace(project.config.stages[name], outs=outs))
        write_record(project, name, f"fp-{name}", {}, recorded, 1.0)
        outcomes.append(StageOutcome(name, "ran", fingerprint=f"fp-{name}"))
    return RunResult("run", outcomes, 1.0)


def cli_imports(cwd: Path, *args: str, setup: str = "") -> tuple[str, list[str]]:
    """Run ``sluice ARGS`` in a fresh interpreter in ``cwd``: (its stdout, the names of
    the modules it had imported when it finished), to check what a command leaves out.
    ``setup``: Python run first in that interpreter."""
    import json
    import subprocess
    import sys

    marker = "--- modules ---"
    code = (setup + "\nimport sys, json\n"
            f"sys.argv = ['sluice', *{list(args)!r}]\n"
            "from sluice.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print({marker!r})\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                            text=True, timeout=120, check=True)
    stdout, modules = result.stdout.rsplit(marker + "\n", 1)
    return stdout, json.loads(modules)
