"""Data status: 20,000 small files and 4 × 256 MiB pinned, `sluice data status` vs `dvc status`.

The same data is pinned in two git repositories, by `sluice data add` in one and
by `dvc add` in the other, as two directories: ``data/small/`` (20,000 files of
1–8 KiB of random bytes, in 20 sub-folders) and ``data/large/`` (four files of
256 MiB). Each repository also has a one-stage pipeline that reads both
directories, run once. Three situations are timed, each command as a whole
process (interpreter start-up included), the tools taking turns:

(a) warm, nothing changed;
(b) one small file just rewritten (same size, new bytes, a fresh edit before
    every timed run);
(c) a fresh clone of each repository with the data copied in (new inodes and
    mtimes) and no local state: sluice without ``.sluice/`` (no stat cache),
    DVC with a fresh ``DVC_SITE_CACHE_DIR`` and no ``.dvc/tmp`` (no hash
    state), so both must hash all 1.1 GB again. The DVC clone shares the
    original's cache (``dvc cache dir --local``, as CI runners do): without
    its objects DVC reports "not in cache" without hashing anything. Here the
    hashing throughput is compared with a raw read of the same bytes (warm
    page cache).

Targets (issue 15): (a) and (b) `sluice data status` ≥ 8× faster than `dvc status`
of the pins; (c) ≥ 60 % of raw read throughput. Every command's CPU time (user +
system, children included) is printed beside its wall time, and so is the floor
of a pure-Python status: the interpreter starting and `stat` of every pinned file
(``python -c`` of an ``os.scandir`` walk), with how close sluice is to it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from _common import (
    DATASETS,
    LARGE_BYTES,
    LARGE_COUNT,
    SMALL_COUNT,
    SMALL_DIRS,
    Section,
    Target,
    Timing,
    backdate,
    bench_env,
    dvc_bin,
    dvc_init,
    faster,
    fmt_mbs,
    fmt_s,
    git_commit_all,
    git_init,
    make_data,
    markdown_table,
    measure_interleaved,
    read_tree,
    require_free_space,
    require_sluice,
    run,
    sluice_cmd,
    verdict,
    work_dir,
)

TARGET_RATIO = 8.0
TARGET_FRACTION = 0.60
# Peak disk use: data + store for each tool (4 copies) and two clones with the data.
DISK_NEEDED = 7 * (SMALL_COUNT * 5 * 1024 + LARGE_COUNT * LARGE_BYTES)
EDITED = "data/small/part07/00042.bin"

SCRIPT = """\
import os
import sys

# Summarise the datasets: file count and bytes per folder (does not read them).
*folders, out = sys.argv[1:]
with open(out, "w") as handle:
    for folder in folders:
        sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs]
        handle.write(f"{folder} {len(sizes)} {sum(sizes)}\\n")
"""

SLUICE_YAML = """\
version: 1
datasets:
  small: data/small
  large: data/large
stages:
  summarise:
    cmd: python3 src/summarise.py ${datasets.small} ${datasets.large} ${outs.summary}
    outs: {summary: out/summary.txt}
"""

DVC_YAML = """\
stages:
  summarise:
    cmd: python3 src/summarise.py data/small data/large out/summary.txt
    deps: [src/summarise.py, data/small, data/large]
    outs: [out/summary.txt]
"""

PIN_FILES = ["data/small.dvc", "data/large.dvc"]

# The floor of any status written in Python: start the interpreter, `stat` every file.
FLOOR_SCRIPT = """\
import os, sys
def walk(folder):
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            walk(entry.path)
        else:
            entry.stat()
for folder in sys.argv[1:]:
    walk(folder)
"""


class CpuClock:
    """CPU time (user + system, this process and its children) of each timed call."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    @staticmethod
    def _now() -> float:
        me, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                        resource.RUSAGE_CHILDREN))
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def wrap(self, fns: dict[str, Callable[[], object]]) -> dict[str, Callable[[], object]]:
        def timed(name: str, fn: Callable[[], object]) -> Callable[[], object]:
            def call() -> object:
                start = self._now()
                try:
                    return fn()
                finally:
                    self.samples.setdefault(name, []).append(self._now() - start)
            return call
        return {name: timed(name, fn) for name, fn in fns.items()}

    def median(self, name: str) -> float:
        values = sorted(self.samples[name][1:] or self.samples[name])  # less the warm-up
        return values[len(values) // 2]


# --------------------------------------------------------------------------- data


def copy_data(source: Path, dest: Path) -> None:
    """``cp -r`` the datasets: new inodes, new mtimes (no -p), as a fresh download would have."""
    (dest / "data").mkdir(exist_ok=True)
    for rel in DATASETS:
        subprocess.run(["cp", "-r", str(source / rel), str(dest / rel)], check=True)


def write_sources(root: Path) -> None:
    (root / "src").mkdir()
    (root / "out").mkdir()
    (root / "src" / "summarise.py").write_text(SCRIPT)


# --------------------------------------------------------------------------- tools


class Dvc:
    """DVC commands in one repository, with a site cache dir of its own (or a fresh one)."""

    def __init__(self, root: Path, site: Path) -> None:
        self.root = root
        self.site = site
        self.exe = dvc_bin()
        self._fresh = 0

    def env(self) -> dict[str, str]:
        return bench_env({"DVC_SITE_CACHE_DIR": str(self.site)})

    def run(self, *args: str) -> str:
        return run([self.exe, *args], self.root, env=self.env())

    def forget(self) -> None:
        """No hash state left: a fresh site cache dir and no .dvc/tmp (index, btime, locks)."""
        shutil.rmtree(self.site, ignore_errors=True)
        self._fresh += 1
        self.site = self.site.with_name(f"{self.site.name.split('~')[0]}~{self._fresh}")
        shutil.rmtree(self.root / ".dvc" / "tmp", ignore_errors=True)


def sluice_run(root: Path, *args: str, expect: int = 0) -> str:
    """``sluice ARGS`` in ``root``; the exit code must be ``expect``."""
    proc = subprocess.run(sluice_cmd(*args), cwd=root, env=bench_env(), capture_output=True,
                          text=True)
    if proc.returncode != expect:
        raise RuntimeError(f"`sluice {' '.join(args)}` exited {proc.returncode} "
                           f"(expected {expect}) in {root}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def sluice_data_states(root: Path, expect: int = 0) -> dict[str, str]:
    rows = json.loads(sluice_run(root, "data", "status", "--json", expect=expect))
    return {r["path"]: r["state"] for r in rows}


def sluice_stale(root: Path) -> list[str]:
    return [p["stage"] for p in json.loads(sluice_run(root, "status", "--json"))["stale"]]


def setup_sluice(root: Path, rng: random.Random) -> tuple[int, float]:
    """The sluice repository; returns (data bytes, seconds `sluice data add` took)."""
    git_init(root)
    nbytes = make_data(root, rng, small_count=SMALL_COUNT, large_bytes=LARGE_BYTES)
    backdate(root / "data")
    write_sources(root)
    (root / "sluice.yaml").write_text(SLUICE_YAML)
    (root / ".gitignore").write_text("out/\n")
    start = time.perf_counter()
    sluice_run(root, "data", "add", *DATASETS)
    add_s = time.perf_counter() - start
    git_commit_all(root, "pipeline and pinned data")
    sluice_run(root, "run")
    if sluice_data_states(root) != dict.fromkeys(DATASETS, "unchanged") or sluice_stale(root):
        raise RuntimeError("sluice does not report the freshly pinned data as unchanged")
    return nbytes, add_s


def setup_dvc(source: Path, dvc: Dvc) -> float:
    """The DVC repository, with a copy of the data; returns seconds `dvc add` took."""
    root = dvc.root
    git_init(root)
    copy_data(source, root)
    backdate(root / "data")
    write_sources(root)
    (root / "dvc.yaml").write_text(DVC_YAML)
    dvc_init(root)
    start = time.perf_counter()
    dvc.run("add", "-q", *DATASETS)
    add_s = time.perf_counter() - start
    dvc.run("repro", "-q")
    git_commit_all(root, "pipeline and pinned data")
    check_dvc_clean(dvc)
    return add_s


def check_dvc_clean(dvc: Dvc) -> None:
    out = dvc.run("status")
    if "up to date" not in out:
        raise RuntimeError(f"dvc status does not report the repository as up to date:\n{out}")


def clone(source: Path, dest: Path) -> None:
    run(["git", "clone", "-q", str(source), str(dest)], source.parent)
    copy_data(source, dest)


# --------------------------------------------------------------------------- measuring


def commands(sroot: Path, dvc: Dvc, *, modified: bool) -> dict[str, Callable[[], object]]:
    """The timed commands; ``modified``: `sluice data status` then exits 1."""
    return {
        "sluice data status": lambda: sluice_run(sroot, "data", "status",
                                                 expect=1 if modified else 0),
        "sluice status": lambda: sluice_run(sroot, "status"),
        "floor": lambda: run([sys.executable, "-c", FLOOR_SCRIPT, *DATASETS], sroot),
        "dvc status (pins)": lambda: dvc.run("status", *PIN_FILES),
        "dvc status (stage)": lambda: dvc.run("status", "summarise"),
        "dvc status": lambda: dvc.run("status"),
    }


class Editor:
    """Rewrites one small file with new bytes of the same size (a fresh edit each time)."""

    def __init__(self, rng: random.Random, *roots: Path) -> None:
        self.rng = rng
        self.roots = roots
        self.original = (roots[0] / EDITED).read_bytes()

    def edit(self, root: Path) -> None:
        (root / EDITED).write_bytes(self.rng.randbytes(len(self.original)))

    def restore(self) -> None:
        for root in self.roots:
            (root / EDITED).write_bytes(self.original)
            backdate(root / EDITED)


def check_modified(sroot: Path, dvc: Dvc) -> None:
    states = sluice_data_states(sroot, expect=1)
    if states != {"data/small": "modified", "data/large": "unchanged"}:
        raise RuntimeError(f"sluice data status missed the edit: {states}")
    if sluice_stale(sroot) != ["summarise"]:
        raise RuntimeError("sluice status does not report the stage as stale after the edit")
    out = dvc.run("status")
    if "modified" not in out or "data/small" not in out:
        raise RuntimeError(f"dvc status missed the edit:\n{out}")


def bench(repeats: int = 5, clone_repeats: int = 3) -> Section:
    require_sluice()
    rng = random.Random(20240607)
    with work_dir("data-status") as tmp:
        require_free_space(tmp, DISK_NEEDED, "data_status.py")
        sroot, droot = tmp / "sluice", tmp / "dvc"
        sroot.mkdir()
        droot.mkdir()
        print(f"generating {SMALL_COUNT:,} small files and {LARGE_COUNT} × "
              f"{LARGE_BYTES // 2**20} MiB, pinning them...", flush=True)
        nbytes, sluice_add_s = setup_sluice(sroot, rng)
        dvc = Dvc(droot, tmp / "dvc-site")
        dvc_add_s = setup_dvc(sroot, dvc)
        os.sync()

        print("(a) warm, nothing changed...", flush=True)
        for _ in range(2):  # settle both tools' hash state
            sluice_run(sroot, "data", "status")
            sluice_run(sroot, "status")
            check_dvc_clean(dvc)
        cpu = {case: CpuClock() for case in "abc"}
        warm = measure_interleaved(cpu["a"].wrap(commands(sroot, dvc, modified=False)),
                                   repeats=repeats)
        if sluice_data_states(sroot) != dict.fromkeys(DATASETS, "unchanged"):
            raise RuntimeError("sluice data status changed its mind with nothing changed")

        print("(b) one small file edited...", flush=True)
        editor = Editor(rng, sroot, droot)
        editor.edit(sroot)
        editor.edit(droot)
        check_modified(sroot, dvc)
        edit_s, edit_d = partial(editor.edit, sroot), partial(editor.edit, droot)
        edited = measure_interleaved(
            cpu["b"].wrap(commands(sroot, dvc, modified=True)), repeats=repeats,
            before={"sluice data status": edit_s, "sluice status": edit_s,
                    "dvc status (pins)": edit_d, "dvc status (stage)": edit_d,
                    "dvc status": edit_d})
        editor.restore()

        print("(c) fresh clones with the data copied in...", flush=True)
        sclone, dclone_root = tmp / "sluice-clone", tmp / "dvc-clone"
        clone(sroot, sclone)
        clone(droot, dclone_root)
        dclone = Dvc(dclone_root, tmp / "dvc-clone-site")
        dclone.run("cache", "dir", "--local", str(droot / ".dvc" / "cache"))
        os.sync()
        read_tree(sclone / "data")  # warm the page cache
        if sluice_data_states(sclone) != dict.fromkeys(DATASETS, "unchanged"):
            raise RuntimeError("sluice data status in the clone does not match the pins")
        if "up to date" not in dclone.run("status", *PIN_FILES):
            raise RuntimeError("dvc status in the clone does not match the pins")

        def forget_sluice() -> None:
            shutil.rmtree(sclone / ".sluice", ignore_errors=True)

        def sluice_library() -> None:
            from sluice.data.status import data_status
            from sluice.workspace.project import load_project

            if {s.state for s in data_status(load_project(sclone))} != {"unchanged"}:
                raise RuntimeError("data_status() in the clone does not match the pins")

        fresh = measure_interleaved(cpu["c"].wrap({
            "raw read": lambda: read_tree(sclone / "data"),
            "cat": lambda: subprocess.run(
                "find data -type f -print0 | xargs -0 cat > /dev/null", shell=True,
                cwd=sclone, check=True),
            "sluice data status": lambda: sluice_run(sclone, "data", "status"),
            "sluice data_status()": sluice_library,
            "sluice status": lambda: sluice_run(sclone, "status"),
            "dvc status (pins)": lambda: dclone.run("status", *PIN_FILES),
            "dvc status (stage)": lambda: dclone.run("status", "summarise"),
            "dvc status": lambda: dclone.run("status"),
        }), repeats=clone_repeats, before={
            "sluice data status": forget_sluice, "sluice data_status()": forget_sluice,
            "sluice status": forget_sluice, "dvc status (pins)": dclone.forget,
            "dvc status (stage)": dclone.forget, "dvc status": dclone.forget})
        dclone.forget()
        dvc.forget()
    return report(repeats, clone_repeats, nbytes, sluice_add_s, dvc_add_s, warm, edited, fresh,
                  cpu)


# --------------------------------------------------------------------------- report


LABELS = {
    "sluice data status": "`sluice data status`",
    "sluice status": "`sluice status`",
    "floor": "floor: `python -c` + `stat` of every file",
    "dvc status (pins)": "`dvc status data/small.dvc data/large.dvc`",
    "dvc status (stage)": "`dvc status summarise`",
    "dvc status": "`dvc status`",
}
COUNTERPART = {"dvc status (pins)": "sluice data status", "dvc status (stage)": "sluice status"}


def report(repeats: int, clone_repeats: int, nbytes: int, sluice_add_s: float,
           dvc_add_s: float, warm: dict[str, Timing], edited: dict[str, Timing],
           fresh: dict[str, Timing], cpu: dict[str, CpuClock]) -> Section:
    section = Section(
        title=f"Data status: {SMALL_COUNT:,} small files + {LARGE_COUNT} × "
              f"{LARGE_BYTES // 2**20} MiB pinned",
        what=(
            f"Two pinned directories: `data/small/` ({SMALL_COUNT:,} files of 1–8 KiB, random "
            f"bytes, in {SMALL_DIRS} folders) and `data/large/` ({LARGE_COUNT} files of "
            f"{LARGE_BYTES // 2**20} MiB), {nbytes / 1e9:.2f} GB in all, pinned by "
            "`sluice data add` in one git repository and by `dvc add` in another (its own "
            "copy), plus a one-stage pipeline that reads both directories, run once. "
            "Whole commands are timed as processes, the tools taking turns: (a) warm, "
            "nothing changed; (b) one small file rewritten (same size, new bytes) before "
            "every timed run; (c) a fresh clone of each repository with the data copied in "
            "(`cp -r`: new inodes and mtimes) and no local state before every timed run — "
            "sluice without `.sluice/`, DVC with a fresh `DVC_SITE_CACHE_DIR` and no "
            "`.dvc/tmp` — so both hash all the data again; the DVC clone shares the "
            "original's cache (`dvc cache dir --local`, as CI runners do), since without "
            "its objects `dvc status` answers \"not in cache\" without hashing. Like for "
            "like: `sluice data status` ↔ `dvc status` of the two `.dvc` files, `sluice "
            "status` ↔ `dvc status summarise`; plain `dvc status` does both. Median of "
            f"{repeats} runs ((a), (b)) or {clone_repeats} runs ((c)) after a warm-up."),
        headers=["case", "command", "median", "min–max (s)", "CPU (s)", "DVC / sluice"],
    )

    def rows(case: str, t: dict[str, Timing], clock: CpuClock) -> None:
        for key in LABELS:
            if key not in t:
                continue
            ratio = ""
            if key in COUNTERPART:
                ratio = f"{t[key].median / t[COUNTERPART[key]].median:.1f}×"
            elif key == "dvc status":
                ratio = f"{t[key].median / t['sluice data status'].median:.1f}× ¹"
            elif key == "floor":
                ratio = f"{t['dvc status (pins)'].median / t[key].median:.1f}× ²"
            section.rows.append([case, LABELS[key], fmt_s(t[key].median), t[key].spread(),
                                 f"{clock.median(key):.3f}", ratio])

    rows("(a) warm, unchanged", warm, cpu["a"])
    rows("(b) 1 small file edited", edited, cpu["b"])
    rows("(c) fresh clone", fresh, cpu["c"])

    def ratios(t: dict[str, Timing]) -> tuple[float, float]:
        return (t["dvc status (pins)"].median / t["sluice data status"].median,
                t["dvc status (stage)"].median / t["sluice status"].median)

    for case, label, t in (("a", "warm, nothing changed", warm),
                           ("b", "one small file edited", edited)):
        data_ratio, stage_ratio = ratios(t)
        ok = data_ratio >= TARGET_RATIO
        floor, ours = t["floor"].median, t["sluice data status"].median
        best = t["dvc status (pins)"].median / floor
        section.targets.append(Target(
            f"({case}) `sluice data status`, {label}, vs `dvc status`",
            f"≥ {TARGET_RATIO:g}× faster",
            f"{data_ratio:.1f}× ({fmt_s(t['sluice data status'].median)} vs "
            f"{fmt_s(t['dvc status (pins)'].median)}); floor {best:.1f}×", ok))
        section.findings.append(
            f"({case}) {label}: `sluice data status` is **{faster(data_ratio)}** than `dvc "
            f"status` of the pins (target ≥ {TARGET_RATIO:g}×: {verdict(ok)}), "
            f"`sluice status` {faster(stage_ratio)} than `dvc status` of the stage; the floor "
            f"(interpreter start-up + `stat` of every file) is {fmt_s(floor)}, "
            f"{best:.1f}× faster than DVC: sluice takes {fmt_s(ours - floor)} above it "
            f"({ours / floor:.1f}× the floor)")

    read = fresh["raw read"].median
    command = fresh["sluice data status"].median
    fraction = read / command
    ok = fraction >= TARGET_FRACTION
    section.targets.append(Target(
        "(c) `sluice data status` in a fresh clone: hashing 1.1 GB (warm page cache)",
        f"≥ {TARGET_FRACTION:.0%} of raw read throughput",
        f"{fraction:.0%} ({fmt_mbs(nbytes, command)} vs {fmt_mbs(nbytes, read)})", ok))
    data_ratio, stage_ratio = ratios(fresh)
    section.findings.append(
        f"(c) fresh clone: `sluice data status` hashes at **{fraction:.0%}** of raw read "
        f"throughput, whole command included ({fmt_mbs(nbytes, command)} vs "
        f"{fmt_mbs(nbytes, read)}; target ≥ {TARGET_FRACTION:.0%}: {verdict(ok)}); the "
        f"library call alone (`data_status()`, in-process) reaches "
        f"{read / fresh['sluice data_status()'].median:.0%}; sluice is "
        f"{faster(data_ratio)} than `dvc status` of the pins, `sluice status` "
        f"{faster(stage_ratio)} than `dvc status` of the stage")

    tput_rows = []
    tput_labels = {
        "raw read": "raw read (os.walk + readinto loop, in-process)",
        "cat": "`find | xargs cat > /dev/null`",
        "sluice data status": "**`sluice data status`** (whole command)",
        "sluice data_status()": "sluice `data_status()` (in-process, stat-cache flush incl.)",
        "sluice status": "`sluice status` (whole command)",
        "dvc status (pins)": "`dvc status data/small.dvc data/large.dvc`",
        "dvc status (stage)": "`dvc status summarise`",
        "dvc status": "`dvc status`",
    }
    for key, label in tput_labels.items():
        seconds = fresh[key].median
        tput_rows.append([label, fmt_s(seconds), f"{cpu['c'].median(key):.3f}",
                          fmt_mbs(nbytes, seconds), f"{read / seconds:.0%}"])
    section.blocks.append(
        f"(c) as throughput over the {nbytes / 1e9:.2f} GB that must be read, warm page "
        "cache (the copies were just written and read once):\n\n"
        + markdown_table(["method", "median", "CPU (s)", "throughput", "vs raw read"],
                         tput_rows))
    section.notes.append(
        f"¹ plain `dvc status` (pins and stage) against `sluice data status`. "
        "² the best ratio any status written in Python could reach: DVC against the floor "
        "(the same interpreter starting and walking both folders with `os.scandir`, one "
        "`stat` per file, nothing else). "
        f"Setting up, once each: `sluice data add` took {sluice_add_s:.1f} s, `dvc add` "
        f"{dvc_add_s:.1f} s (hash and copy into each tool's cache). Peak disk use about "
        f"{6 * nbytes / 1e9:.0f} GB (data and cache for each tool, two clones).")
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clone-repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the data, to try the script (figures not comparable)")
    args = parser.parse_args()
    if args.quick:
        global SMALL_COUNT, LARGE_BYTES
        SMALL_COUNT, LARGE_BYTES = SMALL_COUNT // 10, LARGE_BYTES // 16
    bench(args.repeats, args.clone_repeats).print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
