"""No-op run: a 20-stage pipeline where nothing changed, `sluice run` vs `dvc repro`.

The pipeline is a 10-stage chain c01..c10 plus 10 stages fanning out from it
(f01..f05 read c05, the chain's middle; f06..f10 read c10, its end). Every stage
is a small Python script (its own code dependency) that reads its input and
writes a small output file. The same pipeline is written as sluice.yaml and as
dvc.yaml in two git repos; each tool runs it once, then the no-op rerun (nothing
changed, nothing to do) is timed as a whole process, as a user would see it.

Target: sluice ≥ 8× faster than DVC (issue 15; issue 13 asked 5×). Also timed: the
floor of a no-op run in Python, and `sluice --help` with ten more commands in its table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    BENCH_DIR,
    QUIET_ENV,
    REPO_ROOT,
    Section,
    Target,
    bench_env,
    cpu_model,
    dvc_bin,
    dvc_init,
    faster,
    fmt_s,
    git_commit_all,
    git_init,
    markdown_table,
    measure_interleaved,
    require_sluice,
    run,
    sluice_cmd,
    sluice_statuses,
    verdict,
    work_dir,
)
from _noop_phases import MARKER

TARGET_RATIO = 8.0  # issue 15 (issue 13: 5×)
HELP_LIMIT_S = 0.085  # issue 15: `sluice --help` with about ten more commands
EXTRA_COMMANDS = 10

# `sluice --help` with EXTRA_COMMANDS dummy rows added to the command table, as the
# open issues' new commands will add (sluice.cli.commands; each row a module that is
# never imported by --help). Timed against the same command line without the rows.
HELP_CODE = """\
import sys
import sluice.cli.commands as table
table.COMMANDS.update({f"extra{i}": (f"sluice.cli.extra{i}_cmd", f"Extra command {i}.")
                       for i in range(int(sys.argv[1]))})
sys.argv = ["sluice", "--help"]
from sluice.cli.main import main
main()
"""

# The floor of a no-op run in Python: interpreter start-up, the standard-library
# modules any implementation of this design needs (paths, JSON records, dataclasses,
# regular expressions, a git call, threads) and xxhash, then the least work: read
# every stage's record and stat every dependency and output. What sluice adds on top
# is its own code.
FLOOR_CODE = """\
import dataclasses, json, os, pathlib, re, subprocess, threading, typing
import xxhash
records = pathlib.Path(".sluice/stages")
for record in sorted(records.glob("*.json")):
    data = json.loads(record.read_bytes())
    for path in [*data["components"].get("deps", {}), *data["components"].get("imports", {})]:
        os.stat(path)
    for out in data["outs"].values():
        os.stat(out["path"])
"""
CHAIN = [f"c{i:02d}" for i in range(1, 11)]
FANOUT = [f"f{i:02d}" for i in range(1, 11)]

SCRIPT = """\
import hashlib
import sys

# stage {name}: digest of the input, one line of output
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "w") as out:
    out.write("{name} " + hashlib.sha256(data).hexdigest() + "\\n")
"""


def upstream_of(name: str) -> str | None:
    """The stage whose output ``name`` reads; None for the first stage (reads data/raw.txt)."""
    if name in CHAIN:
        i = CHAIN.index(name)
        return CHAIN[i - 1] if i else None
    return "c05" if FANOUT.index(name) < 5 else "c10"


def out_path(name: str) -> str:
    return f"out/{name}.txt"


def write_sources(root: Path) -> None:
    (root / "src").mkdir()
    (root / "data").mkdir()
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("".join(f"row {i}\n" for i in range(1000)))
    for name in CHAIN + FANOUT:
        (root / "src" / f"{name}.py").write_text(SCRIPT.format(name=name))


def sluice_yaml() -> str:
    lines = ["version: 1", "stages:"]
    for name in CHAIN + FANOUT:
        up = upstream_of(name)
        src = f"${{stages.{up}.outs.x}}" if up else "data/raw.txt"
        deps = [f"src/{name}.py"] + ([] if up else ["data/raw.txt"])
        lines += [f"  {name}:",
                  f"    cmd: python3 src/{name}.py {src} ${{outs.x}}",
                  f"    deps: [{', '.join(deps)}]"]
        if up:
            lines.append(f"    inputs: [stages.{up}.outs.x]")
        lines.append(f"    outs: {{x: {out_path(name)}}}")
    return "\n".join(lines) + "\n"


def dvc_yaml() -> str:
    lines = ["stages:"]
    for name in CHAIN + FANOUT:
        up = upstream_of(name)
        src = out_path(up) if up else "data/raw.txt"
        deps = [f"src/{name}.py", src]
        lines += [f"  {name}:",
                  f"    cmd: python3 src/{name}.py {src} {out_path(name)}",
                  f"    deps: [{', '.join(deps)}]",
                  f"    outs: [{out_path(name)}]"]
    return "\n".join(lines) + "\n"


def output_stamps(root: Path) -> dict[str, int]:
    return {n: os.stat(root / out_path(n)).st_mtime_ns for n in CHAIN + FANOUT}


def setup_sluice(root: Path, *, python: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
    git_init(root)
    write_sources(root)
    (root / "sluice.yaml").write_text(sluice_yaml())
    (root / ".gitignore").write_text(".sluice/\nout/\n")
    git_commit_all(root, "pipeline")
    counts = sluice_statuses(["run"], root, python=python, env=env)
    if counts != {"ran": 20}:
        raise RuntimeError(f"sluice's first run did not run all 20 stages: {counts}")


def setup_dvc(root: Path) -> None:
    git_init(root)
    write_sources(root)
    dvc_init(root)
    (root / "dvc.yaml").write_text(dvc_yaml())
    git_commit_all(root, "pipeline")
    run([dvc_bin(), "repro", "-q"], root)
    git_commit_all(root, "dvc.lock")


def check_noop(tool: str, root: Path, args: list[str], *,
               env: dict[str, str] | None = None) -> None:
    """Fail loudly unless a no-op run of ``tool`` leaves every output untouched."""
    stamps = output_stamps(root)
    out = run(args, root, env=env)
    if output_stamps(root) != stamps:
        raise RuntimeError(f"{tool}'s no-op run rewrote outputs; the benchmark is broken:\n{out}")


IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|( *)(\S+)")
# Packages that come with another one, counted as part of it.
GROUPS = {"pydantic_core": "pydantic", "annotated_types": "pydantic",
          "typing_inspection": "pydantic", "typing_extensions": "pydantic",
          "shellingham": "typer", "annotated_doc": "typer", "click": "typer"}
STDLIB = "standard library"
SMALL_S = 0.002  # packages below this are summed up as "other packages"


@dataclass
class Breakdown:
    """Where one in-process no-op `sluice run` spends its time (seconds, medians)."""

    total: float  # measured without instrumentation
    other: float  # everything but imports
    by_package: dict[str, float]  # import time, scaled to total - other
    heaviest: list[tuple[str, float]]  # single modules by their own import time, scaled
    inflation: float  # how much -X importtime inflated the import figures

    @property
    def imports(self) -> float:
        return sum(self.by_package.values())


def package_of(module: str) -> str:
    top = module.split(".")[0]
    return STDLIB if top in sys.stdlib_module_names else GROUPS.get(top, top)


def attribute(importtime_log: str) -> tuple[dict[str, float], dict[str, float]]:
    """Own import time per owner and per module, from `-X importtime` output.

    A standard-library module is charged to the nearest third-party (or sluice)
    module above it in the import tree, the one that pulled it in; only those
    imported by nothing else stay "standard library".
    """
    entries = [(int(m[1]) / 1e6, len(m[2]), m[3]) for m in IMPORT_LINE.finditer(importtime_log)]
    by_owner: dict[str, float] = {}
    by_module: dict[str, float] = {}
    stack: list[tuple[int, str]] = []  # (indent, owner) of the ancestors of the current line
    for own, indent, module in reversed(entries):  # parents come before children, reversed
        while stack and stack[-1][0] >= indent:
            stack.pop()
        owner = package_of(module)
        if owner == STDLIB and stack:
            owner = stack[-1][1]
        stack.append((indent, owner))
        by_owner[owner] = by_owner.get(owner, 0.0) + own
        by_module[module] = by_module.get(module, 0.0) + own
    return by_owner, by_module


def in_process_run(root: Path, *, importtime: bool) -> tuple[float, str]:
    """One `sluice run` inside benchmarks/_noop_phases.py: (seconds, stderr)."""
    result_file = root.parent / "phases.json"
    result_file.unlink(missing_ok=True)
    args = [sys.executable, *(["-X", "importtime"] if importtime else []),
            str(BENCH_DIR / "_noop_phases.py"), str(result_file), "run"]
    proc = subprocess.run(args, cwd=root, env=bench_env(), capture_output=True, text=True)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    if proc.returncode != 0 or result.get("exit") not in (0, None):
        raise RuntimeError(f"in-process `sluice run` failed:\n{proc.stdout}\n{proc.stderr}")
    return float(result["seconds"]), proc.stderr


def import_breakdown(root: Path, repeats: int) -> Breakdown:
    """Attribute a no-op `sluice run`'s in-process time to imports (by package) and the rest.

    -X importtime inflates import times (its own bookkeeping lands in them), so the
    per-package figures are scaled down to what the same run takes uninstrumented.
    """
    plain: list[float] = []
    other: list[float] = []
    instrumented_imports: list[float] = []
    packages: list[dict[str, float]] = []
    modules: list[dict[str, float]] = []
    for i in range(repeats + 1):  # the first fills the byte-code cache
        seconds, _ = in_process_run(root, importtime=False)
        total, stderr = in_process_run(root, importtime=True)
        if i == 0:
            continue
        by_package, by_module = attribute(stderr.split(MARKER, 1)[-1])
        plain.append(seconds)
        imports = sum(by_package.values())
        instrumented_imports.append(imports)
        other.append(total - imports)
        packages.append(by_package)
        modules.append(by_module)

    def medians(runs: list[dict[str, float]], scale: float) -> dict[str, float]:
        keys = {k for run in runs for k in run}
        return {k: scale * statistics.median(run.get(k, 0.0) for run in runs) for k in keys}

    total, rest = statistics.median(plain), statistics.median(other)
    raw_imports = statistics.median(instrumented_imports)
    scale = max(total - rest, 0.0) / raw_imports if raw_imports else 1.0
    by_package = dict(sorted(medians(packages, scale).items(), key=lambda kv: -kv[1]))
    heaviest = sorted(medians(modules, scale).items(), key=lambda kv: -kv[1])[:8]
    return Breakdown(total, rest, by_package, heaviest, 1 / scale if scale else 1.0)


def breakdown_block(b: Breakdown) -> str:
    rows: list[list[str]] = []
    small = [(p, s) for p, s in b.by_package.items() if s < SMALL_S]
    for package, seconds in b.by_package.items():
        if seconds >= SMALL_S:
            if package == "sluice":
                label = "import sluice's own modules (incl. building its pydantic models)"
            elif package == STDLIB:
                label = "standard-library modules imported by nothing else"
            else:
                label = f"import {package}"
            rows.append([label, f"{seconds * 1000:.1f} ms", f"{seconds / b.total:.0%}"])
    if small:
        seconds = sum(s for _, s in small)
        rows.append([f"import {len(small)} other packages", f"{seconds * 1000:.1f} ms",
                     f"{seconds / b.total:.0%}"])
    rows.append(["everything else: CLI parsing, config, graph, 20 fingerprints, records",
                 f"{b.other * 1000:.1f} ms", f"{b.other / b.total:.0%}"])
    rows.append(["total in-process (interpreter start-up not included)",
                 f"{b.total * 1000:.1f} ms", "100%"])
    heavy = ", ".join(f"`{m}` {s * 1000:.1f} ms" for m, s in b.heaviest)
    return ("Where a no-op `sluice run` spends its time: the real command run in-process, "
            "once plain (total) and once under `python -X importtime` (each module's own "
            "import time, summed by package; a standard-library module counts for the "
            "package that imported it; the instrumentation inflated import times "
            f"{b.inflation:.2f}×, so they are scaled back to the plain run), medians:\n\n"
            + markdown_table(["phase", "time", "share"], rows)
            + f"\n\nHeaviest single modules (own import time): {heavy}.")


def recompiles_sluice() -> bool:
    """Whether this environment, as is, recompiles sluice's modules on every start.

    True under PYTHONDONTWRITEBYTECODE=1 with no byte-code next to sluice's sources
    (an editable install in a sandbox or CI image that sets that variable).
    """
    import sluice.pipeline.scheduler  # sluice itself may be a namespace package, without __file__

    package = Path(sluice.pipeline.scheduler.__file__).parent
    return bool(os.environ.get("PYTHONDONTWRITEBYTECODE")) and \
        not any(package.glob("__pycache__/*.pyc"))


def bench(repeats: int = 7) -> Section:
    require_sluice()
    dvc = str(dvc_bin())
    with work_dir("noop") as tmp:
        sroot, droot = tmp / "sluice", tmp / "dvc"
        sroot.mkdir()
        droot.mkdir()
        setup_sluice(sroot)
        setup_dvc(droot)
        for _ in range(2):  # also settles sluice's stat cache (see sluice.util.statcache, "racy")
            check_noop("sluice", sroot, sluice_cmd("run"))
            check_noop("dvc", droot, [dvc, "repro"])
        counts = sluice_statuses(["run"], sroot)
        if sum(counts.get(s, 0) for s in ("cached", "up-to-date")) != 20:
            raise RuntimeError(f"sluice's no-op run did not find 20 up-to-date stages: {counts}")

        as_is = {**os.environ, **QUIET_ENV}
        extra = {"sluice run, as is": lambda: run(sluice_cmd("run"), sroot, env=as_is)} \
            if recompiles_sluice() else {}
        t = measure_interleaved({
            "sluice run": lambda: run(sluice_cmd("run"), sroot),
            **extra,
            "dvc repro": lambda: run([dvc, "repro"], droot),
            "sluice status": lambda: run(sluice_cmd("status"), sroot),
            "dvc status": lambda: run([dvc, "status"], droot),
            "sluice --help": lambda: run(sluice_cmd("--help"), sroot),
            "help, as is": lambda: run([sys.executable, "-c", HELP_CODE, "0"], sroot),
            "help, more commands": lambda: run(
                [sys.executable, "-c", HELP_CODE, str(EXTRA_COMMANDS)], sroot),
            "floor": lambda: run([sys.executable, "-c", FLOOR_CODE], sroot),
            "python -c pass": lambda: run([sys.executable, "-c", "pass"], sroot),
        }, repeats=repeats, warmup=1)
        check_noop("sluice", sroot, sluice_cmd("run"))  # still a no-op after all those runs
        check_noop("dvc", droot, [dvc, "repro"])
        breakdown = import_breakdown(sroot, max(3, repeats // 2))

    ratio = t["dvc repro"].median / t["sluice run"].median
    status_ratio = t["dvc status"].median / t["sluice status"].median
    section = Section(
        title="No-op run: 20-stage pipeline, nothing changed",
        what=(
            "A 10-stage chain plus 10 stages fanning out from its middle and end; every "
            "stage is a small Python script (its own code dependency) writing a small file. "
            "After one full run, the no-op rerun is timed as a whole process, interpreter "
            "start-up included, as a user sees it: `sluice run` vs `dvc repro`, median of "
            f"{repeats} runs after warm-up, the commands taking turns so that both see the "
            "same background load. Both tools are checked to leave every output untouched."),
        headers=["command", "median", "min–max (s)", "DVC / sluice"],
    )

    def row(label: str, key: str, ref: str | None = None) -> list[str]:
        timing = t[key]
        return [label, fmt_s(timing.median), timing.spread(),
                f"{timing.median / t[ref].median:.1f}×" if ref else ""]

    section.rows = [
        row("`sluice run` (no-op)", "sluice run"),
        row("`dvc repro` (no-op)", "dvc repro", "sluice run"),
        row("`sluice status`", "sluice status"),
        row("`dvc status`", "dvc status", "sluice status"),
        row("`sluice --help` (start-up floor)", "sluice --help"),
        row("`sluice --help`, through `python -c` (as the next row)", "help, as is"),
        row(f"`sluice --help` with {EXTRA_COMMANDS} more (dummy) commands in the table",
            "help, more commands"),
        row("floor of a no-op run in Python ²", "floor", None),
        row("`python -c pass` (interpreter floor)", "python -c pass"),
    ]
    if extra:
        section.rows.insert(1, row("`sluice run` (no-op), no byte-code for sluice ¹",
                                   "sluice run, as is"))
        section.notes.append(
            "¹ This environment sets PYTHONDONTWRITEBYTECODE=1, so an editable install "
            "recompiles sluice's own modules on every start; this row shows that cost. All "
            "other rows run with byte-code caching on (PYTHONPYCACHEPREFIX under "
            "benchmarks/.work), as an installed sluice or DVC always has it.")
    section.notes.append(
        "² `python -c`: import json, pathlib, dataclasses, re, subprocess, threading, typing "
        "and xxhash, read the 20 stage records and stat every dependency and output — the "
        "least a no-op run written in Python does; DVC's time over it is the best ratio "
        "such a tool could reach here.")
    floor_ratio = t["dvc repro"].median / t["floor"].median
    help_more = t["help, more commands"].median
    section.targets = [Target("no-op `sluice run` vs `dvc repro`, 20 stages",
                              f"≥ {TARGET_RATIO:g}× faster",
                              f"{ratio:.1f}× ({t['sluice run'].median:.3f} s vs "
                              f"{t['dvc repro'].median:.3f} s)", ratio >= TARGET_RATIO),
                       Target(f"`sluice --help` with {EXTRA_COMMANDS} more commands",
                              f"≤ {HELP_LIMIT_S:.3f} s", f"{help_more:.3f} s",
                              help_more <= HELP_LIMIT_S)]
    section.findings = [
        f"no-op run: sluice is **{faster(ratio)}** than DVC "
        f"(target ≥ {TARGET_RATIO:g}×: {verdict(ratio >= TARGET_RATIO)})",
        f"floor: {t['floor'].median:.3f} s, so no Python tool beats DVC by more than "
        f"{floor_ratio:.1f}× here; sluice is at {ratio / floor_ratio:.0%} of that "
        f"(sluice's own code: +{t['sluice run'].median - t['floor'].median:.3f} s)",
        f"`sluice --help` with {EXTRA_COMMANDS} more commands in the table: "
        f"{help_more:.3f} s vs {t['help, as is'].median:.3f} s without them "
        f"(target ≤ {HELP_LIMIT_S:.3f} s: {verdict(help_more <= HELP_LIMIT_S)})",
        f"status: sluice is {faster(status_ratio)} than DVC",
        f"inside a no-op `sluice run`: {breakdown.imports * 1000:.0f} ms importing modules, "
        f"{breakdown.other * 1000:.0f} ms everything else",
    ]
    section.blocks = [breakdown_block(breakdown)]
    return section


# --------------------------------------------------------------------------- --compare

COMPARE_REPEATS = 30
REGRESSION_LIMIT = 0.05  # issue 13: start-up and no-op run within 5 % of before
IMPORTTIME_REPEATS = 5
COMPARE_BEGIN = "<!-- noop_run.py --compare: begin -->"
COMPARE_END = "<!-- noop_run.py --compare: end -->"
DEFAULT_TITLE = "Start-up and no-op run, two revisions compared"


@dataclass
class Revision:
    """One revision of sluice, checked out and installed for --compare."""

    label: str  # "A" or "B"
    rev: str  # as given on the command line
    commit: str  # short hash
    subject: str
    worktree: Path
    python: Path  # the interpreter that runs this revision's sluice
    env: dict[str, str]  # the environment of every process of this revision
    pipeline: Path  # this revision's own copy of the 20-stage pipeline (its own warm caches)

    @property
    def name(self) -> str:
        return f"{self.label} = `{self.rev}` ({self.commit})"


def resolve(rev: str) -> tuple[str, str, str]:
    """(full hash, short hash, subject) of ``rev`` in this repository."""
    full = run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
               REPO_ROOT).strip()
    short, subject = run(["git", "log", "-1", "--format=%h%x00%s", full],
                         REPO_ROOT).strip().split("\0", 1)
    source = run(["git", "log", "-1", "--format=%h", full, "--", "src"], REPO_ROOT).strip()
    if source and source != short:  # e.g. a commit that changed only benchmarks or docs
        subject += f"; its sluice sources are those of {source}"
    return full, short, subject


def install_revision(label: str, rev: str, tmp: Path, stack: contextlib.ExitStack, *,
                     shared_venv: bool) -> Revision:
    """Check ``rev`` out with `git worktree add` under ``tmp`` and install it.

    By default into a venv of its own (``pip install -e``, dependencies from that
    revision's pyproject.toml; pip's cache and the local index make it about half
    a minute). With ``shared_venv``, the interpreter running this benchmark is used
    with PYTHONPATH=WORKTREE/src in front of its own sluice.
    """
    full, short, subject = resolve(rev)
    worktree = tmp / f"src-{label}"
    run(["git", "worktree", "add", "--detach", "-q", worktree, full], REPO_ROOT)
    stack.callback(lambda: subprocess.run(
        ["git", "worktree", "remove", "--force", os.fspath(worktree)], cwd=REPO_ROOT,
        capture_output=True))
    env = bench_env()
    if shared_venv:
        python = Path(sys.executable)
        env["PYTHONPATH"] = os.fspath(worktree / "src")
    else:
        env.pop("PYTHONPATH", None)
        venv = tmp / f"venv-{label}"
        print(f"{label}: installing {rev} ({short}) into a venv of its own...", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        run([base, "-m", "venv", venv], tmp)
        python = venv / "bin" / "python"
        run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e",
             worktree], tmp, env=env)
    where = run([python, "-c", "import sluice; print(sluice.__file__)"], tmp, env=env)
    where = where.strip().splitlines()[-1]
    expected = (worktree / "src" / "sluice" / "__init__.py").resolve()
    if Path(where).resolve() != expected:
        raise RuntimeError(f"{label} ({rev}) imports sluice from {where}, not from {expected}")
    print(f"{label}: {rev} = {short} {subject!r}; sluice.__file__ = {where}", flush=True)
    pipeline = tmp / f"pipeline-{label}"
    pipeline.mkdir()
    return Revision(label, rev, short, subject, worktree, python, env, pipeline)


def warm_up(r: Revision) -> None:
    """Build the pipeline and run it with this revision: full run, then settled no-ops."""
    setup_sluice(r.pipeline, python=r.python, env=r.env)
    for _ in range(2):  # also settles the stat cache ("racy" mtimes) and the config cache
        check_noop(f"sluice {r.label}", r.pipeline, sluice_cmd("run", python=r.python),
                   env=r.env)
    counts = sluice_statuses(["run"], r.pipeline, python=r.python, env=r.env)
    if sum(counts.get(s, 0) for s in ("cached", "up-to-date")) != 20:
        raise RuntimeError(f"{r.label}'s no-op run did not find 20 up-to-date stages: {counts}")


@dataclass
class Samples:
    wall: list[float]
    cpu: list[float]  # user + system time of the process and the children it waited for


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run(args, cwd, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


COMMANDS = {  # label: sluice's arguments, or None for the interpreter floor
    "`sluice --help`": ["--help"],
    "no-op `sluice run`, 20 stages": ["run"],
    "`python -c pass` (floor)": None,
}


def measure_revisions(revs: list[Revision], repeats: int,
                      warmup: int = 2) -> dict[tuple[str, str], Samples]:
    """Time every command with every revision, A and B taking turns.

    Each round runs every command once per revision, A then B on even rounds and
    B then A on odd ones, so neither always follows the other; each revision runs
    in its own copy of the pipeline and so sees its own warm caches.
    """
    samples = {(c, r.label): Samples([], []) for c in COMMANDS for r in revs}
    for i in range(warmup + repeats):
        order = revs if i % 2 == 0 else revs[::-1]
        for command, args in COMMANDS.items():
            for r in order:
                argv = sluice_cmd(*args, python=r.python) if args is not None \
                    else [os.fspath(r.python), "-c", "pass"]
                wall, cpu = timed(argv, r.pipeline, r.env)
                if i >= warmup:
                    samples[command, r.label].wall.append(wall)
                    samples[command, r.label].cpu.append(cpu)
    return samples


def sluice_importers(importtime_log: str) -> dict[str, str]:
    """For each module in an `-X importtime` log, the nearest sluice module above it.

    That is the sluice module whose import statement brought it in (directly or
    through other packages); "" for modules imported before sluice.
    """
    entries = [(len(m[2]), m[3]) for m in IMPORT_LINE.finditer(importtime_log)]
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, module) of the ancestors of the current line
    for indent, module in reversed(entries):  # parents come before children, reversed
        while stack and stack[-1][0] >= indent:
            stack.pop()
        found[module] = next((m for _, m in reversed(stack) if m.split(".")[0] == "sluice"), "")
        stack.append((indent, module))
    return found


def importtime_profile(r: Revision, args: list[str], repeats: int
                       ) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """Median own import time per owner and per module of `python -X importtime -m sluice ARGS`,
    and the sluice module that imported each module (see :func:`sluice_importers`)."""
    owners: list[dict[str, float]] = []
    modules: list[dict[str, float]] = []
    importers: dict[str, str] = {}
    for _ in range(repeats):
        log = run([os.fspath(r.python), "-X", "importtime", "-m", "sluice", *args],
                  r.pipeline, env=r.env)
        by_owner, by_module = attribute(log)
        owners.append(by_owner)
        modules.append(by_module)
        importers.update(sluice_importers(log))

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        keys = {k for run_ in runs for k in run_}
        return {k: statistics.median(run_.get(k, 0.0) for run_ in runs) for k in keys}

    return medians(owners), medians(modules), importers


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def importtime_block(a: Revision, b: Revision, args: list[str], repeats: int) -> str:
    """What B imports that A did not, for `sluice ARGS`, from `-X importtime` (medians)."""
    owners_a, modules_a, _ = importtime_profile(a, args, repeats)
    owners_b, modules_b, importers_b = importtime_profile(b, args, repeats)
    deltas = sorted(((o, owners_b.get(o, 0.0) - owners_a.get(o, 0.0))
                     for o in owners_a.keys() | owners_b.keys()), key=lambda kv: -abs(kv[1]))
    rows = [[o, ms(owners_a.get(o, 0.0)), ms(owners_b.get(o, 0.0)), f"{d * 1000:+.1f} ms"]
            for o, d in deltas[:8]]
    total_a, total_b = sum(owners_a.values()), sum(owners_b.values())
    rows.append(["all imports", ms(total_a), ms(total_b), f"{(total_b - total_a) * 1000:+.1f} ms"])
    own_a = {m for m in modules_a if not m.startswith("sluice")}
    own_b = {m for m in modules_b if not m.startswith("sluice")}
    only_b = sorted(own_b - own_a, key=lambda m: -modules_b[m])
    only_a = sorted(own_a - own_b, key=lambda m: -modules_a[m])
    sluice_a = [m for m in modules_a if m.startswith("sluice")]
    sluice_b = [m for m in modules_b if m.startswith("sluice")]
    own_sluice_a = sum(modules_a[m] for m in sluice_a)
    own_sluice_b = sum(modules_b[m] for m in sluice_b)
    heavy_a = sorted(sluice_a, key=lambda m: -modules_a[m])[:6]
    heavy_b = sorted(sluice_b, key=lambda m: -modules_b[m])[:6]

    by_importer: dict[str, list[str]] = {}
    for m in only_b:
        by_importer.setdefault(importers_b.get(m, ""), []).append(m)
    via = sorted(by_importer.items(), key=lambda kv: -sum(modules_b[m] for m in kv[1]))
    via_lines = "".join(
        (f"\n  - through `{importer}`" if importer
         else "\n  - at run time (imported inside a function, not by a module's import)")
        + f": {len(names)} modules, {ms(sum(modules_b[m] for m in names))}, e.g. "
        + ", ".join(f"`{m}`" for m in names[:5])
        for importer, names in via[:6])

    def listing(names: list[str], times: dict[str, float]) -> str:
        shown = ", ".join(f"`{m}` {ms(times[m])}" for m in names[:12])
        more = f" and {len(names) - 12} more" if len(names) > 12 else ""
        return (shown + more) if names else "none"

    return (f"`python -X importtime -m sluice {' '.join(args)}`, own import time per package "
            f"(a standard-library module counts for the package that imported it), median of "
            f"{repeats} runs each, largest differences first (instrumented, so inflated):\n\n"
            + markdown_table(["package", f"A ({a.commit})", f"B ({b.commit})", "B − A"], rows)
            + f"\n\n- sluice's own modules: A {len(sluice_a)} ({ms(own_sluice_a)}), "
            f"B {len(sluice_b)} ({ms(own_sluice_b)})"
            + f"\n- heaviest of sluice's modules in A: {listing(heavy_a, modules_a)}"
            + f"\n- heaviest of sluice's modules in B: {listing(heavy_b, modules_b)}"
            + f"\n- other modules imported by B only: {listing(only_b, modules_b)}{via_lines}"
            + f"\n- other modules imported by A only: {listing(only_a, modules_a)}")


def load_line(when: str) -> str:
    one, five, _ = os.getloadavg()
    return f"{when} {one:.2f} (1 min) / {five:.2f} (5 min)"


def compare(rev_a: str, rev_b: str, *, repeats: int, shared_venv: bool,
            title: str) -> Section:
    """Time `sluice --help` and a no-op `sluice run` for two revisions; see main()."""
    with work_dir("compare") as tmp, contextlib.ExitStack() as stack:
        a = install_revision("A", rev_a, tmp, stack, shared_venv=shared_venv)
        b = install_revision("B", rev_b, tmp, stack, shared_venv=shared_venv)
        revs = [a, b]
        for r in revs:
            warm_up(r)
        load_before = load_line("load average at the start")
        started = time.monotonic()
        samples = measure_revisions(revs, repeats)
        took = time.monotonic() - started
        load_after = load_line("at the end")
        for r in revs:  # still a no-op after all those runs
            check_noop(f"sluice {r.label}", r.pipeline, sluice_cmd("run", python=r.python),
                       env=r.env)
        blocks = [importtime_block(a, b, args, IMPORTTIME_REPEATS)
                  for args in (["--help"], ["run"])]

    how = ("each in a venv of its own (`python -m venv`, then `pip install -e` of a "
           "`git worktree` of the revision)" if not shared_venv else
           "both in the venv running the benchmark, each with PYTHONPATH=WORKTREE/src of a "
           "`git worktree` of the revision (their dependency sets are taken to be the same)")
    section = Section(
        title=title,
        what=(f"Two revisions of sluice, {a.name} “{a.subject}” and {b.name} "
              f"“{b.subject}”, {how}. Each runs its own copy of the 20-stage pipeline of "
              "the no-op benchmark above (built, run once in full, then twice as a no-op "
              "to warm its caches, which key on the revision's code). Then every command "
              f"runs {repeats} times per revision after 2 untimed rounds, A and B taking "
              "turns (A B, then B A, ...), timed as whole processes: wall time and CPU "
              "time (user + system, the process and the children it waited for)."),
        headers=["command", "A median", "B median", "B / A", "A min", "B min",
                 "A CPU", "B CPU", "B / A CPU"],
    )
    verdicts: list[bool] = []
    for command, args in COMMANDS.items():
        sa, sb = samples[command, "A"], samples[command, "B"]
        wall = statistics.median(sb.wall) / statistics.median(sa.wall)
        cpu = statistics.median(sb.cpu) / statistics.median(sa.cpu)
        section.rows.append([
            command, fmt_s(statistics.median(sa.wall)), fmt_s(statistics.median(sb.wall)),
            f"{wall:.3f}", fmt_s(min(sa.wall)), fmt_s(min(sb.wall)),
            fmt_s(statistics.median(sa.cpu)), fmt_s(statistics.median(sb.cpu)), f"{cpu:.3f}"])
        if args is None:
            continue
        ok = wall <= 1 + REGRESSION_LIMIT
        verdicts.append(ok)
        section.findings.append(
            f"{command}: B/A {wall:.3f} wall ({(wall - 1) * 100:+.1f} %), {cpu:.3f} CPU "
            f"({(cpu - 1) * 100:+.1f} %): "
            + ("within 5 %" if ok else "**more than 5 % slower**"))
    section.findings.append(f"{load_before}, {load_after}; the timed rounds took {took:.0f} s")
    section.blocks = blocks
    section.notes.append(
        f"Reproduce: `.venv/bin/python benchmarks/noop_run.py --compare {a.rev} {b.rev}"
        + (" --shared-venv" if shared_venv else "")
        + (f" --repeats {repeats}" if repeats != COMPARE_REPEATS else "") + "`.")
    section.targets = [Target(f"{c}: B vs A", "within 5 %", "", ok)
                       for c, ok in zip(list(COMMANDS)[:2], verdicts, strict=True)]
    return section


def write_readme_section(section: Section, measured: str) -> Path:
    """Put ``section`` into benchmarks/README.md between the --compare markers.

    Replaces the block written by an earlier --compare, or appends one; run_all.py
    keeps the block when it rewrites the file.
    """
    readme = BENCH_DIR / "README.md"
    text = readme.read_text()
    block = f"{COMPARE_BEGIN}\n{section.markdown(measured).rstrip()}\n{COMPARE_END}\n"
    if COMPARE_BEGIN in text and COMPARE_END in text:
        head, rest = text.split(COMPARE_BEGIN, 1)
        tail = rest.split(COMPARE_END, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    readme.write_text(text)
    return readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed runs per command (default 7; {COMPARE_REPEATS} with "
                             "--compare)")
    parser.add_argument("--compare", nargs=2, metavar=("REV_A", "REV_B"),
                        help="time `sluice --help` and a no-op `sluice run` for two git "
                             "revisions of sluice, each installed in its own venv from a "
                             "`git worktree`, taking turns; reports both and B/A")
    parser.add_argument("--shared-venv", action="store_true",
                        help="with --compare: run both revisions in this interpreter's venv "
                             "with PYTHONPATH=WORKTREE/src instead of a venv each")
    parser.add_argument("--title", default=DEFAULT_TITLE,
                        help="with --compare: the section's title")
    parser.add_argument("--write", action="store_true",
                        help="with --compare: also put the section into benchmarks/README.md")
    args = parser.parse_args()
    if not args.compare:
        bench(args.repeats or 7).print()
        return
    section = compare(*args.compare, repeats=args.repeats or COMPARE_REPEATS,
                      shared_venv=args.shared_venv, title=args.title)
    section.print()
    if args.write:
        measured = (f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} CPU(s) "
                    f"({cpu_model()}), Python {platform.python_version()}.")
        print(f"wrote {write_readme_section(section, measured)}")


if __name__ == "__main__":
    main()
