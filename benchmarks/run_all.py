"""Run every benchmark and write the figures into benchmarks/README.md.

    python benchmarks/run_all.py            # all, then rewrite README.md
    python benchmarks/run_all.py --no-write # all, print only

Run it with the interpreter that has sluice installed (`make bench` uses .venv).
A benchmark that fails is reported in its section; the others still run, and
the exit code is then 1.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import importlib
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import data_status
import first_add
import hashing
import history
import ledger
import noop_run
import parallel_sleep
import plan_scaling
import push_pull
import registry
import registry_oneshot
import ui
import validate
from _common import (
    BENCH_DIR,
    Section,
    Target,
    bench_env,
    dvc_bin,
    machine_info,
    markdown_table,
    require_sluice,
    sluice_source,
    sluice_tree_digest,
)

Benchmark = tuple[str, str, Callable[[], Section]]

BENCHMARKS: list[Benchmark] = [
    ("noop_run.py", "No-op run", noop_run.bench),
    ("parallel_sleep.py", "Parallel stages", parallel_sleep.bench),
    ("hashing.py", "Hashing throughput", hashing.bench),
    ("data_status.py", "Data status", data_status.bench),
    ("first_add.py", "First add", first_add.bench),
    ("plan_scaling.py", "Plan scaling", plan_scaling.bench),
    ("ledger.py", "Ledger", ledger.bench),
    ("registry.py", "Model registry", registry.bench),
    ("registry_oneshot.py", "One-shot registry lookup", registry_oneshot.bench),
    ("validate.py", "Data validation", validate.bench),
    ("ui.py", "sluice ui", ui.bench),
    # One round: a round pushes and pulls 20,000 files six ways per tool against moto,
    # and a run with three did not finish in 55 min. The tools still take turns.
    ("push_pull.py", "Push and pull to S3", lambda: push_pull.bench(1)),
]
# Benchmarks that may not exist yet in every checkout: run when their script is there.
OPTIONAL = [("bootstrap.py", "Bootstrap"), ("remote.py", "Remote stages on Ray")]


def script_section(script: str, title: str) -> Section:
    """Run a benchmark script that prints its own figures; its output becomes the section."""
    proc = subprocess.run([sys.executable, str(BENCH_DIR / script)], cwd=BENCH_DIR.parent,
                          env=bench_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    section = Section(title=title, what=f"The figures `benchmarks/{script}` printed:",
                      headers=[])
    section.blocks.append("```\n" + proc.stdout.strip() + "\n```")
    return section


def defines_bench(path: Path) -> bool:
    """Whether a script defines a top-level ``bench()`` (checked without importing it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef) and node.name == "bench" for node in tree.body)


def optional_benchmark(script: str, title: str) -> Benchmark | None:
    """``script``'s bench() when it has one (returning a Section), else its printed output."""
    path = BENCH_DIR / script
    if not path.exists():
        return None

    def bench() -> Section:
        if not defines_bench(path):
            return script_section(script, title)
        result = importlib.import_module(script.removesuffix(".py")).bench()
        if isinstance(result, Section):
            return result
        section = Section(title=title, what=f"`benchmarks/{script}`'s `bench()` returned:",
                          headers=[])
        section.blocks.append("```\n" + str(result).strip() + "\n```")
        return section

    return script, title, bench


def benchmarks() -> list[Benchmark]:
    found = list(BENCHMARKS)
    for script, title in OPTIONAL:
        extra = optional_benchmark(script, title)
        if extra is not None:
            found.append(extra)
    return found


INTRO = """\
# sluice benchmarks

Figures of sluice against DVC (`dvc repro`, `dvc add`, `dvc status`), the tool it
replaces, measured in the same run on the same machine. Benchmarks print figures and
ratios; they are not tests and never fail the build.

**This file is generated** by `python benchmarks/run_all.py` (or `make bench`);
edit the scripts, not the figures. Each run keeps the one before it: the summary
shows the previous run's figure next to each new one, and "Earlier runs" at the
end holds the older summary tables.

How to run (from the repo root, with the interpreter that has sluice installed):

    make bench                                   # all of them, rewrites this file
    .venv/bin/python benchmarks/run_all.py       # the same
    .venv/bin/python benchmarks/noop_run.py      # one of them, printed only

DVC is installed on first use into its own venv, `benchmarks/.venv-dvc`
(git-ignored), so it never mixes with sluice's dependencies; MLflow, the anchor
for the model registry, likewise into `benchmarks/.venv-mlflow`. All work happens in
a temporary folder (`$SLUICE_BENCH_TMP` if set) that is removed afterwards;
byte-code caches go to `benchmarks/.work/` (git-ignored). `data_status.py` needs
about 7 GB free there (1.2 GB of data, copied and cached by each tool); it
checks before it starts.

Timing: whole commands are timed as processes (interpreter start-up included,
as a user sees them), median of several runs after a warm-up; where sluice and
DVC are compared, their runs take turns so both see the same background load.
"""


def summary_table(targets: list[Target], previous: history.Previous | None = None) -> str:
    """One row a target; with ``previous``, that run's figure next to this one's."""
    rows = [[t.what, t.target, t.result, "✅ met" if t.met else "❌ missed"] for t in targets]
    headers = ["benchmark", "target", "this run", "verdict"]
    if previous is not None:
        header, cells = history.previous_column(previous, [t.what for t in targets])
        headers.insert(3, header)
        for row, cell in zip(rows, cells, strict=True):
            row.insert(3, cell)
    return markdown_table(headers, rows)


def kept_compare_block(readme: Path) -> str:
    """The section `noop_run.py --compare --write` put into README.md, kept as it is."""
    text = readme.read_text() if readme.exists() else ""
    if noop_run.COMPARE_BEGIN not in text or noop_run.COMPARE_END not in text:
        return ""
    block = text.split(noop_run.COMPARE_BEGIN, 1)[1].split(noop_run.COMPARE_END, 1)[0]
    return f"\n{noop_run.COMPARE_BEGIN}{block}{noop_run.COMPARE_END}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; keep README.md")
    args = parser.parse_args()
    require_sluice()
    dvc_bin()  # install DVC before any timing starts

    info = machine_info()
    source_at_start = sluice_tree_digest()
    today = dt.date.today().isoformat()
    measured = (f"Measured {today} on {info['nproc']} CPU(s) ({info['cpu']}), "
                f"Python {info['python']}, sluice {info['sluice']}, DVC {info['dvc']}.")
    print(measured, flush=True)

    sections: list[Section] = []
    failed = False
    mixed: list[str] = []  # benchmarks during which sluice's sources changed
    started = time.monotonic()
    for script, title, bench in benchmarks():
        print(f"\n--- {script}", flush=True)
        t0 = time.monotonic()
        source_before = sluice_tree_digest()
        try:
            section = bench()
        except Exception:
            failed = True
            section = Section(title=title, what=f"`{script}` failed in this run:",
                              headers=[], rows=[])
            section.blocks.append("```\n" + traceback.format_exc().strip() + "\n```")
        section.notes.append(f"`benchmarks/{script}` took {time.monotonic() - t0:.0f} s.")
        if sluice_tree_digest() != source_before:
            mixed.append(script)
            section.notes.append("⚠ sluice's source files changed while this benchmark ran, so "
                                 "its figures may mix two versions of sluice; rerun it.")
        section.print()
        sections.append(section)
    total = time.monotonic() - started
    if sluice_tree_digest() != source_at_start:
        info["sluice source"] = (f"{info['sluice source']} at the start, {sluice_source()} at "
                                 "the end (changed during the run)")

    targets = [t for s in sections for t in s.targets]
    previous = history.read_previous(BENCH_DIR / "README.md")
    machine = markdown_table(["", ""], [[k, v] for k, v in info.items()])
    text = "\n".join([
        INTRO,
        f"## Summary ({today})",
        "",
        summary_table(targets, previous),
        "",
        "Machine:",
        "",
        machine,
        "",
        f"All benchmarks took {total / 60:.1f} min.",
        "",
        *[s.markdown(measured) for s in sections],
    ])
    print(f"\n{summary_table(targets)}\n\nall benchmarks: {total / 60:.1f} min")
    if mixed:
        print(f"WARNING: sluice's sources changed during {', '.join(mixed)}; rerun "
              "when nobody is editing them", file=sys.stderr)
    if not args.no_write:
        text += kept_compare_block(BENCH_DIR / "README.md") + history.earlier_runs(previous)
        (BENCH_DIR / "README.md").write_text(text)
        print(f"wrote {BENCH_DIR / 'README.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
