"""No-op run: a 20-stage pipeline where nothing changed, `sluice run` vs `dvc repro`.

The pipeline is a 10-stage chain c01..c10 plus 10 stages fanning out from it
(f01..f05 read c05, the chain's middle; f06..f10 read c10, its end). Every stage
is a small Python script (its own code dependency) that reads its input and
writes a small output file. The same pipeline is written as sluice.yaml and as
dvc.yaml in two git repos; each tool runs it once, then the no-op rerun (nothing
changed, nothing to do) is timed as a whole process, as a user would see it.

Target: sluice ≥ 5× faster than DVC.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _common import (
    BENCH_DIR,
    QUIET_ENV,
    Section,
    Target,
    bench_env,
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

TARGET_RATIO = 5.0
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


def setup_sluice(root: Path) -> None:
    git_init(root)
    write_sources(root)
    (root / "sluice.yaml").write_text(sluice_yaml())
    (root / ".gitignore").write_text(".sluice/\nout/\n")
    git_commit_all(root, "pipeline")
    counts = sluice_statuses(["run"], root)
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


def check_noop(tool: str, root: Path, args: list[str]) -> None:
    """Fail loudly unless a no-op run of ``tool`` leaves every output untouched."""
    stamps = output_stamps(root)
    out = run(args, root)
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
    import sluice.run  # sluice itself may be a namespace package, without __file__

    package = Path(sluice.run.__file__).parent
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
        for _ in range(2):  # also settles sluice's stat cache (see sluice.state, "racy")
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
    section.targets = [Target("no-op `sluice run` vs `dvc repro`, 20 stages",
                              f"≥ {TARGET_RATIO:g}× faster",
                              f"{ratio:.1f}× ({t['sluice run'].median:.3f} s vs "
                              f"{t['dvc repro'].median:.3f} s)", ratio >= TARGET_RATIO)]
    section.findings = [
        f"no-op run: sluice is **{faster(ratio)}** than DVC "
        f"(target ≥ {TARGET_RATIO:g}×: {verdict(ratio >= TARGET_RATIO)})",
        f"status: sluice is {faster(status_ratio)} than DVC",
        f"inside a no-op `sluice run`: {breakdown.imports * 1000:.0f} ms importing modules, "
        f"{breakdown.other * 1000:.0f} ms everything else",
    ]
    section.blocks = [breakdown_block(breakdown)]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bench(args.repeats).print()


if __name__ == "__main__":
    main()
