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
import statistics
import sys
from pathlib import Path

from _common import (
    BENCH_DIR,
    QUIET_ENV,
    Section,
    Target,
    dvc_bin,
    dvc_init,
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


def phase_breakdown(root: Path, repeats: int) -> list[tuple[str, float]]:
    """Median seconds per phase of a no-op `sluice run`, measured in-process."""
    samples: dict[str, list[float]] = {}
    for _ in range(repeats + 1):  # the first fills the byte-code cache
        out = run([sys.executable, BENCH_DIR / "_noop_phases.py"], root)
        for label, seconds in json.loads(out.strip().splitlines()[-1]).items():
            samples.setdefault(label, []).append(seconds)
    return [(label, statistics.median(values[1:])) for label, values in samples.items()]


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
        phases = phase_breakdown(sroot, max(3, repeats // 2))

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
    imports = sum(s for label, s in phases if label.startswith(("import", "typer")))
    work = sum(s for label, s in phases if not label.startswith(("import", "typer")))
    section.targets = [Target("no-op `sluice run` vs `dvc repro`, 20 stages",
                              f"≥ {TARGET_RATIO:g}× faster",
                              f"{ratio:.1f}× ({t['sluice run'].median:.3f} s vs "
                              f"{t['dvc repro'].median:.3f} s)", ratio >= TARGET_RATIO)]
    section.findings = [
        f"no-op run: sluice is **{ratio:.1f}× faster** than DVC "
        f"(target ≥ {TARGET_RATIO:g}×: {verdict(ratio >= TARGET_RATIO)})",
        f"status: sluice is {status_ratio:.1f}× faster than DVC",
        f"inside a no-op `sluice run`: {imports * 1000:.0f} ms importing modules, "
        f"{work * 1000:.0f} ms of actual work (config, graph, 20 fingerprints)",
    ]
    breakdown = [[label, f"{s * 1000:.1f} ms"] for label, s in phases]
    breakdown.append(["total (plus interpreter start-up)", f"{(imports + work) * 1000:.1f} ms"])
    section.blocks = ["Where a no-op `sluice run` spends its time (in-process, median; each "
                      "import counts only what earlier ones had not loaded):\n\n"
                      + markdown_table(["phase", "time"], breakdown)]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bench(args.repeats).print()


if __name__ == "__main__":
    main()
