"""Parallel execution: 8 independent `sleep 1` stages, forced, `sluice run --jobs 2` vs DVC.

DVC's `dvc repro` runs stages one at a time, so 8 one-second stages take ≥ 8 s.
sluice runs independent stages side by side up to --jobs CPU slots: with 2 slots
the ideal is 4 s. The figure that matters besides the wall time is the overhead
above that ideal (scheduling, fingerprinting, saving outputs, process start-up).

Target: `sluice run --jobs 2 --force` ≈ 4 s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import (
    Section,
    Target,
    dvc_bin,
    dvc_init,
    faster,
    fmt_s,
    git_commit_all,
    git_init,
    measure_interleaved,
    require_sluice,
    run,
    sluice_statuses,
    verdict,
    work_dir,
)

STAGES = [f"p{i}" for i in range(1, 9)]
SLEEP_S = 1.0
TARGET_S = 4.0
TOLERANCE_S = 0.5  # "≈ 4 s": within half a second of the ideal


def command(name: str, out: str) -> str:
    return f"sleep {SLEEP_S:g} && echo {name} > {out}"


def sluice_yaml() -> str:
    lines = ["version: 1", "stages:"]
    for name in STAGES:
        lines += [f"  {name}:",
                  f"    cmd: {command(name, '${outs.x}')}",
                  f"    outs: {{x: out/{name}.txt}}"]
    return "\n".join(lines) + "\n"


def dvc_yaml() -> str:
    lines = ["stages:"]
    for name in STAGES:
        lines += [f"  {name}:",
                  f"    cmd: {command(name, f'out/{name}.txt')}",
                  f"    outs: [out/{name}.txt]"]
    return "\n".join(lines) + "\n"


def setup(root: Path, *, dvc: bool) -> None:
    root.mkdir()
    git_init(root)
    (root / "out").mkdir()
    if dvc:
        dvc_init(root)
        (root / "dvc.yaml").write_text(dvc_yaml())
    else:
        (root / "sluice.yaml").write_text(sluice_yaml())
        (root / ".gitignore").write_text(".sluice/\nout/\n")
    git_commit_all(root, "pipeline")


def sluice_forced(root: Path, jobs: int) -> None:
    """`sluice run --jobs N --force`, checked (through --json) to have run all 8 stages."""
    counts = sluice_statuses(["run", "--jobs", str(jobs), "--force"], root)
    if counts != {"ran": len(STAGES)}:
        raise RuntimeError(f"`sluice run --force` did not run every stage: {counts}")


def dvc_forced(dvc: str, root: Path) -> None:
    out = run([dvc, "repro", "--force"], root)
    missing = [name for name in STAGES if f"Running stage '{name}'" not in out]
    if missing:
        raise RuntimeError(f"`dvc repro --force` did not run {missing}:\n{out}")


def bench(repeats: int = 3) -> Section:
    require_sluice()
    dvc = str(dvc_bin())
    with work_dir("parallel") as tmp:
        sroot, droot = tmp / "sluice", tmp / "dvc"
        setup(sroot, dvc=False)
        setup(droot, dvc=True)
        t = measure_interleaved({
            "sluice -j2": lambda: sluice_forced(sroot, 2),
            "dvc": lambda: dvc_forced(dvc, droot),
            "sluice -j8": lambda: sluice_forced(sroot, 8),
        }, repeats=repeats, warmup=1)

    s2, d, s8 = t["sluice -j2"], t["dvc"], t["sluice -j8"]
    section = Section(
        title="Parallel stages: 8 independent `sleep 1` stages",
        what=(
            "Eight stages that each sleep one second and write a line, with no dependencies "
            "between them; every run is forced (`--force`) so all eight execute. Wall time of "
            f"the whole command, median of {repeats} runs after a warm-up, the commands "
            "taking turns (sluice with `--json`, to check that every stage ran). "
            "Ideal: 4 s with 2 slots, 1 s with 8, 8 s one at a time."),
        headers=["command", "median", "min–max (s)", "ideal", "overhead"],
    )
    section.rows = [
        ["`sluice run --jobs 2 --force`", fmt_s(s2.median), s2.spread(), "4 s",
         f"{s2.median - 4 * SLEEP_S:+.2f} s"],
        ["`dvc repro --force`", fmt_s(d.median), d.spread(), "8 s",
         f"{d.median - 8 * SLEEP_S:+.2f} s"],
        ["`sluice run --jobs 8 --force`", fmt_s(s8.median), s8.spread(), "1 s",
         f"{s8.median - SLEEP_S:+.2f} s"],
    ]
    ok = abs(s2.median - TARGET_S) <= TOLERANCE_S
    section.targets = [Target("8 × `sleep 1`, `sluice run --jobs 2 --force`",
                              f"≈ {TARGET_S:g} s (DVC ≈ 8 s)",
                              f"{s2.median:.2f} s (DVC {d.median:.2f} s)", ok)]
    section.findings = [
        f"`sluice run --jobs 2`: {s2.median:.2f} s (target ≈ {TARGET_S:g} s, within "
        f"±{TOLERANCE_S:g} s: {verdict(ok)})",
        f"DVC, one stage at a time: {d.median:.2f} s — sluice with 2 slots is "
        f"**{faster(d.median / s2.median)}**, with 8 slots {faster(d.median / s8.median)}",
        f"time above the ideal for the whole command: sluice {s2.median - 4 * SLEEP_S:+.2f} s "
        f"(jobs 2), DVC {d.median - 8 * SLEEP_S:+.2f} s",
    ]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench(args.repeats).print()


if __name__ == "__main__":
    main()
