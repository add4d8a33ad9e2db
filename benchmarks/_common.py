"""Shared helpers for the benchmarks: timing, the DVC venv, machine facts, result tables.

Benchmarks print figures and ratios against an anchor tool (DVC) measured in the
same run on the same machine. They are never part of the test suite's pass/fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"  # git-ignored
DVC_VENV = BENCH_DIR / ".venv-dvc"  # git-ignored
DVC_PACKAGE = "dvc"

# Keep DVC from phoning home (there may be no network, and a timeout would be
# charged to DVC's figures); dvc_init() also turns off its update check.
QUIET_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "NO_COLOR": "1",
}


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Wall-clock samples of one measured operation, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def worst(self) -> float:
        return max(self.samples)

    def spread(self) -> str:
        return f"{self.best:.3f}–{self.worst:.3f}"


def measure(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1,
            before: Callable[[], object] | None = None) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    ``before`` runs untimed before every call (warm-up included), e.g. to reset state.
    """
    for _ in range(warmup):
        if before is not None:
            before()
        fn()
    samples: list[float] = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(samples)


def measure_interleaved(fns: Mapping[str, Callable[[], object]], *, repeats: int = 5,
                        warmup: int = 1,
                        before: Mapping[str, Callable[[], object]] | None = None,
                        after: Mapping[str, Callable[[], object]] | None = None
                        ) -> dict[str, Timing]:
    """Like :func:`measure` for several operations, taken in turns (A B A B ...).

    Taking turns exposes every operation to the same background noise, which
    matters on a small shared machine. ``before[name]``, where given, runs
    untimed before every call of ``fns[name]`` (warm-up included), e.g. to reset
    a cache or to make the edit the operation must notice; ``after[name]`` runs
    untimed after it, e.g. to check what the operation left behind.
    """
    before, after = before or {}, after or {}

    def once(name: str, fn: Callable[[], object]) -> float:
        if name in before:
            before[name]()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if name in after:
            after[name]()
        return elapsed

    for _ in range(warmup):
        for name, fn in fns.items():
            once(name, fn)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(once(name, fn))
    return {name: Timing(s) for name, s in samples.items()}


# --------------------------------------------------------------------------- processes


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for every measured process.

    Byte-code caching is forced on, into benchmarks/.work/pycache: an environment
    with PYTHONDONTWRITEBYTECODE=1 (as some sandboxes and CI images set) would
    otherwise make an editable install recompile its modules on every start,
    which no installed user pays. Both tools get the same treatment; the
    warm-up runs fill the cache.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(WORK_DIR / "pycache")
    env.update(QUIET_ENV)
    if extra:
        env.update(extra)
    return env


def run(args: Sequence[str | os.PathLike[str]], cwd: Path, *,
        env: Mapping[str, str] | None = None, check: bool = True) -> str:
    """Run a command; returns its stdout+stderr; raises with the output when it fails."""
    proc = subprocess.run([os.fspath(a) for a in args], cwd=cwd, env=dict(env or bench_env()),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}) in {cwd}: "
                           f"{' '.join(map(str, args))}\n{proc.stdout}")
    return proc.stdout


def run_json(args: Sequence[str | os.PathLike[str]], cwd: Path, *,
             env: Mapping[str, str] | None = None) -> Any:
    """Run a command that prints JSON on stdout (progress on stderr); returns the parsed JSON."""
    proc = subprocess.run([os.fspath(a) for a in args], cwd=cwd, env=dict(env or bench_env()),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}) in {cwd}: "
                           f"{' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout)


def sluice_statuses(args: Sequence[str], cwd: Path, *,
                    python: str | os.PathLike[str] | None = None,
                    env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Run ``sluice ARGS --json``; returns how many stages ended in each status.

    A stage whose outputs had to be copied back from the store counts as "restored".
    ``python``: the interpreter to run sluice with (default: this one).
    """
    result = run_json(sluice_cmd(*args, "--json", python=python), cwd, env=env)
    counts: dict[str, int] = {}
    for stage in result["stages"]:
        status = "restored" if stage.get("restored") else stage["status"]
        counts[status] = counts.get(status, 0) + 1
    return counts


def sluice_cmd(*args: str, python: str | os.PathLike[str] | None = None) -> list[str]:
    """``sluice ARGS`` through this interpreter, so the venv that runs the benchmark is used.

    ``python`` picks another interpreter (another venv, e.g. another revision's).
    """
    return [os.fspath(python) if python else sys.executable, "-m", "sluice", *args]


def require_sluice() -> None:
    try:
        import sluice  # noqa: F401
    except ImportError:
        sys.exit("sluice is not importable from this interpreter; run the benchmark with the "
                 "project's venv, e.g. `.venv/bin/python benchmarks/run_all.py`")


def git_init(folder: Path) -> None:
    run(["git", "init", "-q", "-b", "main"], folder)
    run(["git", "config", "commit.gpgsign", "false"], folder)


def git_commit_all(folder: Path, message: str) -> None:
    run(["git", "add", "-A"], folder)
    run(["git", "commit", "-q", "-m", message], folder)


# --------------------------------------------------------------------------- DVC


def pip_install(venv: Path, *packages: str) -> Path:
    """Install ``packages`` into an anchor tool's own venv (made on first use); its python.

    Anchor tools (DVC, MLflow) live in venvs of their own so that their dependencies
    never mix with sluice's.
    """
    python = venv / "bin" / "python"
    print(f"installing {', '.join(packages)} into {venv.relative_to(REPO_ROOT)} "
          "(first use only; takes a minute or two)...", flush=True)
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        run([base, "-m", "venv", venv], REPO_ROOT)
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
        REPO_ROOT)
    return python


def dvc_bin() -> Path:
    """The ``dvc`` executable of benchmarks/.venv-dvc, creating that venv on first use."""
    exe = DVC_VENV / "bin" / "dvc"
    if exe.exists():
        return exe
    pip_install(DVC_VENV, DVC_PACKAGE)
    if not exe.exists():
        raise RuntimeError(f"pip installed {DVC_PACKAGE} but {exe} does not exist")
    return exe


def dvc_python() -> Path:
    dvc_bin()
    return DVC_VENV / "bin" / "python"


def dvc_init(folder: Path, *, no_scm: bool = False) -> None:
    """``dvc init`` with analytics and the update check off."""
    dvc = dvc_bin()
    run([dvc, "init", "-q", *(["--no-scm"] if no_scm else [])], folder)
    run([dvc, "config", "core.analytics", "false"], folder)
    run([dvc, "config", "core.check_update", "false"], folder)


def dvc_version() -> str:
    return run([dvc_bin(), "--version"], REPO_ROOT).strip().splitlines()[-1]


# --------------------------------------------------------------------------- machine


def sluice_version() -> str:
    try:
        from importlib.metadata import version
        return version("sluice-ml")
    except Exception:
        return "unknown"


def sluice_source() -> str:
    """The git revision of the sluice being measured (or its folder, outside a checkout).

    That is the last commit that changed sluice's own sources: commits that touch
    only benchmarks, tests or docs do not change what is measured.
    """
    try:
        import sluice.pipeline.scheduler  # sluice may be a namespace package, without __file__

        folder = Path(sluice.pipeline.scheduler.__file__).resolve().parents[1]
    except ImportError:
        return "not importable"
    git = ["git", "-C", str(folder)]
    rev = subprocess.run([*git, "log", "-1", "--format=%h", "--", "."], capture_output=True,
                         text=True)
    if rev.returncode != 0 or not rev.stdout.strip():
        return str(folder)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True,
                           text=True).stdout.strip()
    return f"git {rev.stdout.strip()}" + (" + uncommitted changes" if dirty else "")


def sluice_tree_digest() -> str:
    """A digest of the sluice package's source files, to notice edits during a run.

    Benchmarks run an editable install, so a change to the sources while they run
    (a commit, a checkout, someone editing) would silently mix two versions.
    """
    try:
        import sluice.pipeline.scheduler  # sluice may be a namespace package, without __file__

        folder = Path(sluice.pipeline.scheduler.__file__).resolve().parents[1]
    except ImportError:
        return ""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sluice": sluice_version(),
        "sluice source": sluice_source(),
        "dvc": dvc_version(),
    }


# --------------------------------------------------------------------------- work dirs


@contextmanager
def work_dir(name: str) -> Iterator[Path]:
    """A fresh folder under the system temp dir (or $SLUICE_BENCH_TMP), removed afterwards."""
    parent = os.environ.get("SLUICE_BENCH_TMP")
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"sluice-bench-{name}-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Stop before filling the disk: ``what`` needs ``needed`` bytes under ``folder``."""
    free = free_bytes(folder)
    if free < needed:
        raise RuntimeError(f"{what} needs about {needed / 1e9:.1f} GB free under {folder}, "
                           f"only {free / 1e9:.1f} GB are; set SLUICE_BENCH_TMP to a "
                           "folder with more room")


# --------------------------------------------------------------------------- data


READ_CHUNK = 4 * 1024 * 1024


def backdate(root: Path, seconds_ago: float = 60.0) -> None:
    """Set the mtime of every file under ``root`` ``seconds_ago`` in the past.

    sluice's stat cache does not trust a hash recorded within a second of the
    file's mtime (the "racy" case), so data hashed right after it was written
    would be hashed again by the next command; real data is rarely that fresh.
    """
    past = time.time_ns() - int(seconds_ago * 1e9)
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), ns=(past, past))


def read_file(path: str | Path) -> int:
    """Read every byte with readinto() into a buffer of up to 4 MiB allocated for this file.

    The raw-read reference for hashing throughput: the fastest plain way to read
    a file from Python (see hashing.py for why the buffer is allocated per file).
    """
    total = 0
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(min(READ_CHUNK, os.fstat(handle.fileno()).st_size + 1))
        while True:
            n = handle.readinto(buffer)
            if not n:
                return total
            total += n


def read_tree(root: Path) -> int:
    """Read every file under ``root`` like :func:`read_file`; returns the bytes read."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            total += read_file(os.path.join(folder, name))
    return total


# --------------------------------------------------------------------------- data workload

# The pinned-data workload of data_status.py and first_add.py: ``data/small/`` (many
# files of 1–8 KiB of random bytes, in folders) and ``data/large/`` (a few big files).
SMALL_COUNT = 20_000
SMALL_DIRS = 20
SMALL_MIN, SMALL_MAX = 1024, 8 * 1024
LARGE_COUNT = 4
LARGE_BYTES = 256 * 1024 * 1024
DATASETS = ("data/small", "data/large")


def make_data(root: Path, rng: random.Random, *, small_count: int = SMALL_COUNT,
              large_count: int = LARGE_COUNT, large_bytes: int = LARGE_BYTES) -> int:
    """Write data/small and data/large under ``root``; returns the bytes written."""
    total = 0
    per_dir = small_count // SMALL_DIRS
    for d in range(SMALL_DIRS):
        folder = root / "data" / "small" / f"part{d:02d}"
        folder.mkdir(parents=True)
        for i in range(per_dir):
            size = rng.randint(SMALL_MIN, SMALL_MAX)
            (folder / f"{i:05d}.bin").write_bytes(rng.randbytes(size))
            total += size
    large = root / "data" / "large"
    large.mkdir(parents=True)
    block = min(64 * 1024 * 1024, large_bytes)
    for i in range(large_count):
        with open(large / f"shard{i}.bin", "wb") as handle:
            for _ in range(large_bytes // block):
                handle.write(rng.randbytes(block))
        total += large_bytes
    return total


# --------------------------------------------------------------------------- results


@dataclass
class Target:
    """One target of the issue and how this run did against it."""

    what: str
    target: str
    result: str
    met: bool


@dataclass
class Section:
    """One benchmark's results, printable and writable into benchmarks/README.md."""

    title: str
    what: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # ratios and verdicts against targets
    blocks: list[str] = field(default_factory=list)  # further Markdown (e.g. a breakdown table)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def table(self) -> str:
        return markdown_table(self.headers, self.rows)

    def markdown(self, measured: str = "") -> str:
        parts = [f"## {self.title}", "", self.what, ""]
        if measured:
            parts += [f"_{measured}_", ""]
        if self.rows:
            parts += [self.table(), ""]
        parts += [f"- {line}" for line in self.findings]
        for block in self.blocks:
            parts += ["", block]
        for line in self.notes:
            parts += ["", f"_{line}_"]
        return "\n".join(parts).rstrip() + "\n"

    def print(self) -> None:
        print(f"\n== {self.title}\n")
        if self.rows:
            print(self.table())
            print()
        for line in self.findings:
            print(f"  * {line}")
        for block in self.blocks:
            print()
            print(block)
        print()
        for line in self.notes:
            print(f"    ({line})")
        sys.stdout.flush()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) \
            + " |"

    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(headers), sep, *[line(r) for r in rows]])


def faster(ratio: float) -> str:
    """``ratio`` = other tool's time / sluice's time, in words: "3.1× faster" or "1.2× slower"."""
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def fmt_mbs(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e6:,.0f} MB/s"
