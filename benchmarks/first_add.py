"""First add: `sluice data add` vs `dvc add` of 20,000 small files and 4 × 256 MiB.

The workload of ``data_status.py`` (``_common.make_data``: ``data/small/``, 20,000
files of 1–8 KiB in 20 folders; ``data/large/``, four files of 256 MiB), added for
the first time to a fresh repository on every run: a new git repository with the data copied in
(``cp -r``, untimed), an empty store, and for DVC a fresh ``dvc init`` and
``DVC_SITE_CACHE_DIR``. Each tool runs in its default mode: sluice copies into
its store (reflink where the filesystem shares blocks), DVC uses its default
``cache.type`` (reflink, else copy). sluice's opt-in link mode (``data add
--link``, hard links into read-only objects) is timed too, beside DVC's
``cache.type: hardlink``.

Floors, on the same data and filesystem: ``cp -r`` of both folders (every byte
read once and written once, no hashing) and a raw read (every file read once,
in-process). Page cache warm (the copy was just written and ``sync``ed). Whole
commands are timed as processes, the tools taking turns; wall and CPU time
(user + system of the process and its children), medians.

Target: the first `sluice data add` ≥ 3× faster than `dvc add`.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    DATASETS,
    LARGE_BYTES,
    LARGE_COUNT,
    SMALL_COUNT,
    Section,
    Target,
    bench_env,
    dvc_bin,
    dvc_init,
    faster,
    fmt_mbs,
    fmt_s,
    git_init,
    make_data,
    read_tree,
    require_free_space,
    require_sluice,
    run,
    sluice_cmd,
    verdict,
    work_dir,
)

TARGET_RATIO = 3.0


class Workload:
    """The workload's size (``--small``, ``--large-mib``, ``--large-count``)."""

    small_count = SMALL_COUNT
    large_bytes = LARGE_BYTES
    large_count = LARGE_COUNT


def configure(small_count: int, large_mib: int, large_count: int) -> None:
    Workload.small_count = small_count
    Workload.large_bytes = large_mib * 2**20
    Workload.large_count = large_count


def workload_bytes() -> int:
    return Workload.small_count * 5 * 1024 + Workload.large_count * Workload.large_bytes


class Cpu:
    """User + system seconds of this process and the children it waited for."""

    @staticmethod
    def now() -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            total += usage.ru_utime + usage.ru_stime
        return total


class Case:
    """One way of putting the data somewhere: prepared untimed, then timed once per round."""

    def __init__(self, name: str, prepare: Callable[[Path], None],
                 act: Callable[[Path], object], check: Callable[[Path], None]) -> None:
        self.name = name
        self.prepare = prepare
        self.act = act
        self.check = check
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def once(self, root: Path, source: Path, keep: bool) -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        subprocess.run(["cp", "-r", str(source / "data"), str(root / "data")], check=True)
        self.prepare(root)
        os.sync()  # nobody's timed run pays for the copy's writeback
        cpu, start = Cpu.now(), time.perf_counter()
        self.act(root)
        wall, used = time.perf_counter() - start, Cpu.now() - cpu
        self.check(root)
        if keep:
            self.wall.append(wall)
            self.cpu.append(used)
        print(f"  {self.name}: {wall:.3f} s wall, {used:.3f} s CPU"
              f"{'' if keep else ' (warm-up)'}", flush=True)
        shutil.rmtree(root, ignore_errors=True)


def sluice_case(name: str, *extra: str, src: Path | None = None) -> Case:
    """``sluice data add``; ``src``: another revision's sources (``--before``) to run instead."""
    env = bench_env({"PYTHONPATH": str(src)} if src else None)

    def prepare(root: Path) -> None:
        git_init(root)
        (root / "sluice.yaml").write_text("version: 1\n")

    def check(root: Path) -> None:
        out = run(sluice_cmd("data", "status"), root, env=env)
        if out.count("unchanged") < len(DATASETS):
            raise RuntimeError(f"sluice does not report the added data as unchanged:\n{out}")

    return Case(name, prepare, lambda root: run(sluice_cmd("data", "add", *extra, *DATASETS),
                                                root, env=env), check)


def dvc_case(name: str, site: Path, cache_type: str | None = None) -> Case:
    env = bench_env({"DVC_SITE_CACHE_DIR": str(site)})
    exe = dvc_bin()

    def prepare(root: Path) -> None:
        shutil.rmtree(site, ignore_errors=True)
        git_init(root)
        dvc_init(root)
        if cache_type:
            run([exe, "config", "cache.type", cache_type], root, env=env)

    def check(root: Path) -> None:
        out = run([exe, "status", *(f"{d}.dvc" for d in DATASETS)], root, env=env)
        if "up to date" not in out:
            raise RuntimeError(f"dvc status after dvc add:\n{out}")

    return Case(name, prepare, lambda root: run([exe, "add", "-q", *DATASETS], root, env=env),
                check)


def floor_cases() -> list[Case]:
    def cp(root: Path) -> None:
        (root / "copy").mkdir()
        subprocess.run(["cp", "-r", *DATASETS, "copy/"], cwd=root, check=True)

    nothing: Callable[[Path], None] = lambda root: None  # noqa: E731
    return [Case("cp -r", nothing, cp, nothing),
            Case("raw read", nothing, lambda root: read_tree(root / "data"), nothing)]


def bench(repeats: int = 3, warmup: int = 1, link: bool = True,
          before: Path | None = None) -> Section:
    require_sluice()
    with work_dir("first-add") as tmp:
        require_free_space(tmp, 4 * workload_bytes(), "first_add.py")
        source = tmp / "source"
        source.mkdir()
        print(f"generating {Workload.small_count:,} small files and "
              f"{Workload.large_count} × {Workload.large_bytes // 2**20} MiB...", flush=True)
        nbytes = make_data(source, random.Random(20240607), small_count=Workload.small_count,
                           large_count=Workload.large_count,
                           large_bytes=Workload.large_bytes)
        cases = [sluice_case("sluice data add"), dvc_case("dvc add", tmp / "dvc-site"),
                 *floor_cases()]
        if before is not None:
            cases.insert(1, sluice_case("sluice data add (before)", src=before))
        if link:
            cases += [sluice_case("sluice data add --link", "--link"),
                      dvc_case("dvc add (hardlink)", tmp / "dvc-site", "hardlink")]
        rounds = warmup + repeats
        for n in range(rounds):
            # Both orders: every other round runs the cases backwards.
            order = cases if n % 2 == 0 else cases[::-1]
            print(f"round {n + 1}/{rounds}...", flush=True)
            for case in order:
                case.once(tmp / "repo", source, keep=n >= warmup)
    return report(cases, nbytes, repeats)


def report(cases: list[Case], nbytes: int, repeats: int) -> Section:
    by = {c.name: c for c in cases}
    med = {c.name: statistics.median(c.wall) for c in cases}
    cpu = {c.name: statistics.median(c.cpu) for c in cases}
    section = Section(
        title=f"First add: {Workload.small_count:,} small files + "
              f"{Workload.large_count} × {Workload.large_bytes // 2**20} MiB",
        what=(
            f"`sluice data add data/small data/large` vs `dvc add` of the same "
            f"{nbytes / 1e9:.2f} GB, first time: a fresh git repository (and `dvc init`, "
            "fresh `DVC_SITE_CACHE_DIR`) with the data copied in before every run, "
            "untimed, then `sync`. Default modes: sluice copies into its store, DVC uses "
            "its default `cache.type` (reflink, else copy; ext4 here: copy). The link "
            "modes (`sluice data add --link`, DVC `cache.type: hardlink`) and two floors "
            "on the same filesystem — `cp -r` of both folders and a raw read "
            "(in-process readinto loop) — are timed too. Whole processes, the cases "
            f"taking turns (every other round backwards), median of {repeats} runs after "
            "a warm-up; CPU = user + system of the process and its children."),
        headers=["case", "median wall", "min–max (s)", "median CPU", "throughput",
                 "DVC / this"],
    )
    for name in med:
        ratio = ""
        if name.startswith("sluice"):
            anchor = "dvc add (hardlink)" if "--link" in name else "dvc add"
            ratio = f"{med[anchor] / med[name]:.2f}×"
        label = f"**`{name}`**" if name == "sluice data add" else f"`{name}`"
        section.rows.append([label, fmt_s(med[name]),
                             f"{min(by[name].wall):.3f}–{max(by[name].wall):.3f}",
                             fmt_s(cpu[name]), fmt_mbs(nbytes, med[name]), ratio])
    ratio = med["dvc add"] / med["sluice data add"]
    ok = ratio >= TARGET_RATIO
    section.targets.append(Target(
        "first `sluice data add` vs `dvc add`, default modes",
        f"≥ {TARGET_RATIO:g}× faster",
        f"{ratio:.2f}× ({fmt_s(med['sluice data add'])} vs {fmt_s(med['dvc add'])})", ok))
    section.findings.append(
        f"first add: sluice is **{faster(ratio)}** than `dvc add` (target ≥ "
        f"{TARGET_RATIO:g}×: {verdict(ok)}); CPU {cpu['sluice data add']:.2f} s vs "
        f"{cpu['dvc add']:.2f} s")
    floor = med["cp -r"]
    section.findings.append(
        f"floor: `cp -r` of the same data takes {fmt_s(floor)}, a raw read "
        f"{fmt_s(med['raw read'])}; sluice's add takes {med['sluice data add'] / floor:.2f}× "
        f"the copy (DVC {med['dvc add'] / floor:.2f}×), so the best ratio to DVC any copying "
        f"add can reach here is {med['dvc add'] / floor:.1f}×")
    if "sluice data add (before)" in med:
        old = med["sluice data add (before)"]
        section.findings.append(
            f"before/after: the other revision's add {fmt_s(old)} "
            f"({med['dvc add'] / old:.2f}× DVC), this one {fmt_s(med['sluice data add'])}: "
            f"{old / med['sluice data add']:.2f}× faster; CPU "
            f"{cpu['sluice data add (before)']:.2f} s → {cpu['sluice data add']:.2f} s")
    if "sluice data add --link" in med:
        section.findings.append(
            f"link mode: `sluice data add --link` {fmt_s(med['sluice data add --link'])}, "
            f"{faster(med['dvc add (hardlink)'] / med['sluice data add --link'])} than DVC "
            f"with `cache.type: hardlink` ({fmt_s(med['dvc add (hardlink)'])})")
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--small", type=int, default=Workload.small_count,
                        help="number of small files")
    parser.add_argument("--large-mib", type=int, default=Workload.large_bytes // 2**20,
                        help="size of each large file in MiB (a multiple of 64)")
    parser.add_argument("--large-count", type=int, default=Workload.large_count)
    parser.add_argument("--no-link", action="store_true", help="skip the link modes")
    parser.add_argument("--before", type=Path, metavar="SRC",
                        help="also time `sluice data add` run from these sources (another "
                             "revision's `src/`, e.g. from `git archive`), for before/after")
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the data, to try the script (figures not comparable)")
    args = parser.parse_args()
    if args.quick:
        args.small, args.large_mib = args.small // 10, 64
    configure(args.small, args.large_mib, args.large_count)
    bench(args.repeats, args.warmup, link=not args.no_link,
          before=args.before.resolve() if args.before else None).print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
