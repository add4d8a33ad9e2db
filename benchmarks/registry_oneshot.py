"""One-shot registry lookup as a process: `sluice models show m@alias --json` vs MLflow.

A deployment script asks the registry once per process ("which version is in
production?"), so what it waits for is the whole process: interpreter start-up,
imports, opening the database and one query. registry.py times the registry
in-process (imports done, database open); this benchmark times the process.

- sluice: ``python -m sluice models show churn@staging --json`` in a project whose
  database is a SQLite file in ``.sluice/`` (then, where PostgreSQL starts here,
  ``$SLUICE_DATABASE_URL`` naming a PostgreSQL database).
- MLflow (``benchmarks/.venv-mlflow``): ``python -c`` making an
  ``MlflowClient(tracking_uri=..., registry_uri=...)`` and calling
  ``get_model_version_by_alias("churn", "staging")``, printing the version as JSON —
  the least a one-shot MLflow lookup does.

Both registries hold the same model, 50 versions, the alias on version 1 (set up
through registry.py's sides; sluice's versions carry a realistic payload). Each
command runs as a process, 2 warm-ups then ``--repeats`` runs, the tools taking
turns (the first one alternating); wall time and CPU time (user + system of the
child) per process, medians. Both answers are checked (version 1).

Target: sluice's one-shot lookup ≥ 10× faster than MLflow's (wall, SQLite).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import registry
from _common import (
    Section,
    Target,
    bench_env,
    faster,
    require_sluice,
    verdict,
    work_dir,
)

TARGET_RATIO = 10.0
REPEATS = 15
WARMUP = 2
REF = f"{registry.MODEL}@{registry.ALIAS}"

MLFLOW_LOOKUP = """\
import json, sys
from mlflow import MlflowClient
uri = sys.argv[1]
v = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(
    sys.argv[2], sys.argv[3])
print(json.dumps({"name": v.name, "version": int(v.version), "source": v.source,
                  "run_id": v.run_id, "aliases": list(v.aliases), "tags": dict(v.tags)}))
"""

Command = tuple[list[str], Path, dict[str, str]]


def timed(command: Command) -> tuple[float, float, str]:
    """Run once: (wall s, CPU s of the child, stdout); raises if it fails."""
    args, cwd, env = command
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def interleaved(commands: Mapping[str, Command], repeats: int
                ) -> dict[str, tuple[list[float], list[float], str]]:
    """Warm-up, then ``repeats`` runs of each, taking turns; (walls, cpus, last stdout)."""
    names = list(commands)
    for _ in range(WARMUP):
        for name in names:
            timed(commands[name])
    found: dict[str, tuple[list[float], list[float], str]] = {n: ([], [], "") for n in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            wall, cpu, out = timed(commands[name])
            walls, cpus, _ = found[name]
            walls.append(wall)
            cpus.append(cpu)
            found[name] = (walls, cpus, out)
    return found


def check_answers(found: Mapping[str, tuple[list[float], list[float], str]]) -> None:
    for name, (_, _, out) in found.items():
        if name.startswith("python"):
            continue
        got = json.loads(out)
        version = got.get("version")
        if version != 1:
            raise RuntimeError(f"{name} answered version {version!r}, expected 1: {out}")


def make_project(folder: Path) -> Path:
    project = folder / "project"
    project.mkdir()
    (project / "sluice.yaml").write_text("version: 1\nstages: {}\n")
    return project


def populate(sluice_url: str, mlflow_url: str, folder: Path) -> str:
    """The same registry on both sides (registry.py's set-up); MLflow's version."""
    sluice = registry.SluiceSide(sluice_url, folder / "locks")
    try:
        sluice.setup()
    finally:
        sluice.close()
    mlflow = registry.MlflowSide(mlflow_url, folder)
    try:
        mlflow.setup()
        return str(mlflow.version)
    finally:
        mlflow.close()


def commands(project: Path, mlflow_url: str, env: dict[str, str]) -> dict[str, Command]:
    mlflow_env = bench_env(registry.MLFLOW_ENV)
    return {
        "sluice": ([sys.executable, "-m", "sluice", "models", "show", REF, "--json"],
                   project, env),
        "MLflow": ([str(registry.mlflow_python()), "-c", MLFLOW_LOOKUP, mlflow_url,
                    registry.MODEL, registry.ALIAS], project, mlflow_env),
        "python -c pass": ([sys.executable, "-c", "pass"], project, env),
    }


def measure(label: str, project: Path, sluice_url: str | None, mlflow_url: str,
            repeats: int) -> tuple[list[list[str]], float]:
    env = bench_env()
    env.pop("SLUICE_DATABASE_URL", None)
    if sluice_url is not None:
        env["SLUICE_DATABASE_URL"] = sluice_url
    print(f"timing {label}...", flush=True)
    found = interleaved(commands(project, mlflow_url, env), repeats)
    check_answers(found)
    med = {n: (statistics.median(w), statistics.median(c)) for n, (w, c, _) in found.items()}
    ratio = med["MLflow"][0] / med["sluice"][0]
    rows = []
    for name, (walls, _, _) in found.items():
        shown = "`sluice models show m@alias --json`" if name == "sluice" else \
            "MLflow `get_model_version_by_alias` (`python -c`)" if name == "MLflow" else \
            "`python -c pass` (interpreter floor)"
        rows.append([label, shown, f"{med[name][0]:.3f} s",
                     f"{min(walls):.3f}–{max(walls):.3f}", f"{med[name][1]:.3f} s",
                     f"{ratio:.1f}×" if name == "MLflow" else ""])
    return rows, ratio


def bench(repeats: int = REPEATS, with_postgres: bool = True) -> Section:
    require_sluice()
    registry.mlflow_python()  # install MLflow before any timing starts
    section = Section(
        title="One-shot registry lookup: `sluice models show` vs MLflow, as processes",
        what=(__doc__ or "").split("\n\n")[1].replace("\n", " ")
        + f" Same registry on both sides (model `{registry.MODEL}`, {registry.PRELOAD} "
          f"versions, alias `{registry.ALIAS}`); {WARMUP} warm-ups then {repeats} runs of "
          "each process, the tools taking turns; medians of wall and CPU (user + system) "
          "time.",
        headers=["backend", "process", "wall (median)", "min–max (s)", "CPU (median)",
                 "MLflow / sluice"])
    with work_dir("registry-oneshot") as tmp:
        project = make_project(tmp)
        from sluice.db import database_url

        sqlite_url = database_url(project, None)
        mlflow_url = f"sqlite:///{tmp / 'mlflow.db'}"
        (project / ".sluice").mkdir()
        version = populate(sqlite_url, mlflow_url, tmp / "sqlite-setup")
        rows, ratio = measure("SQLite", project, None, mlflow_url, repeats)
        section.rows += rows
        section.findings.append(
            f"SQLite: sluice's one-shot lookup is **{faster(ratio)}** than MLflow {version}'s "
            f"(target ≥ {TARGET_RATIO:g}×: {verdict(ratio >= TARGET_RATIO)})")
        section.targets.append(Target("one-shot `models show m@alias --json` vs MLflow, "
                                      "as processes (SQLite)", f"≥ {TARGET_RATIO:g}×",
                                      f"{ratio:.1f}×", ratio >= TARGET_RATIO))
        if with_postgres:
            with registry.postgres(tmp) as (server, detail):
                if server is None:
                    section.findings.append(f"PostgreSQL: not measured: {detail}")
                else:
                    pg_sluice = f"postgresql+psycopg://{server}/sluice"
                    pg_mlflow = f"postgresql+psycopg://{server}/mlflow"
                    populate(pg_sluice, pg_mlflow, tmp / "pg-setup")
                    rows, ratio = measure(f"PostgreSQL {detail}", project, pg_sluice,
                                          pg_mlflow, repeats)
                    section.rows += rows
                    section.findings.append(
                        f"PostgreSQL: sluice is {faster(ratio)} than MLflow (through "
                        "SQLAlchemy and psycopg 3 on both sides)")
    return section


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help=f"timed runs of each process (default {REPEATS})")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    bench(args.repeats, with_postgres=not args.no_postgres).print()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
