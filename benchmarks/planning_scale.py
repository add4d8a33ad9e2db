"""Planning at scale: `sluice plan` and runs of 1,000 and 5,000 stages, with what they cost the
shared store and the database.

A synthetic monorepo of many independent models, each a chain ``prepare_mNNNN``
(reads one of 4 shared datasets) → ``train_mNNNN`` (kind ``train``) →
``evaluate_mNNNN`` (kind ``evaluate``), plus one ``lint`` check that gates
them all. Each stage depends on its model's own script (``src/models/mNNNN.py``)
and a shared helper (``src/common/lib.py``); commands are cheap shell commands
(no Python start-up per stage), so the figures are sluice's own work. The shared
store is ``s3://`` on a moto S3 server in a thread of this process, which counts
every request by method and kind (object, run record, listing) and the bytes
each way; the database is the default SQLite file. Scenarios, in this order:

1. cold: the first `sluice run --jobs 2` (every stage runs; nothing cached anywhere);
2. no-op: `sluice plan` and `sluice run` again (everything up to date);
3. change: one of the 4 datasets edited and committed, `sluice run --jobs 2`
   (a quarter of the models rerun);
4. fresh clone: `git clone`, then `sluice run` (everything restored from the shared store).

Counts come from an instrumented run (this script re-runs itself as
``--child``: SQLAlchemy statement/commit events are counted, then sluice's CLI
runs in-process as ``python -m sluice`` would); times and CPU (user + system,
children included) are whole processes. `plan` and the no-op run are timed
again uninstrumented, median of ``--repeats``; the other scenarios change
state, so they run once (instrumented: SQLAlchemy is imported up front, which
a run that executes stages does anyway).

Above ``--full-up-to`` stages (default 1,000) only scenarios 1 and 2 run (a lighter
measurement: the cold run there takes minutes on 2 cores). Runs that execute stages use
``--jobs 64`` by default (see the section text for why).
"""

from __future__ import annotations

import argparse
import json
import resource
import runpy
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    Section,
    Timing,
    bench_env,
    fmt_s,
    git_commit_all,
    git_init,
    measure,
    require_sluice,
    run,
    sluice_cmd,
    work_dir,
)
from push_pull import BUCKET, Bucket, Counting, aws_env, start_moto

DATASETS = 4
DATASET_ROWS = 400  # about 10 KB each: every prepare/train output is about that size
CHILD = "--child"


# --------------------------------------------------------------------------- the project


def model_names(stages: int) -> list[str]:
    return [f"m{i:04d}" for i in range((stages - 1) // 3)]


def sluice_yaml(models: list[str], store_url: str) -> str:
    lines = ["version: 1", f"storage: {{cache: '{store_url}'}}", "datasets:"]
    lines += [f"  d{k}: data/d{k}.csv" for k in range(DATASETS)]
    lines += ["stages:", "  lint:", "    kind: check", "    cmd: 'true'",
              "    deps: [src/common/lib.py]"]
    for i, m in enumerate(models):
        deps = f"    deps: [src/models/{m}.py, src/common/lib.py]"
        data = f"${{datasets.d{i % DATASETS}}}"
        lines += [f"  prepare_{m}:",
                  f"    cmd: '{{ cat {data}; echo {m}; }} > ${{outs.table}}'",
                  deps, f"    outs: {{table: build/{m}/table.csv}}",
                  f"  train_{m}:", "    kind: train",
                  f"    cmd: '{{ cat ${{stages.prepare_{m}.outs.table}}; echo model; }} "
                  "> ${outs.model}'",
                  deps, f"    outs: {{model: build/{m}/model.bin}}",
                  f"  evaluate_{m}:", "    kind: evaluate",
                  f"    cmd: 'wc -l < ${{stages.train_{m}.outs.model}} > ${{outs.metrics}}'",
                  deps, f"    outs: {{metrics: build/{m}/metrics.txt}}"]
    return "\n".join(lines) + "\n"


def make_project(root: Path, stages: int, store_url: str) -> int:
    """The repository, committed on main; returns its number of stages."""
    models = model_names(stages)
    git_init(root)
    (root / "data").mkdir()
    for k in range(DATASETS):
        (root / "data" / f"d{k}.csv").write_text(
            "".join(f"{r},{r * (k + 1) % 97},{r % 2}\n" for r in range(DATASET_ROWS)))
    (root / "src" / "common").mkdir(parents=True)
    (root / "src" / "common" / "lib.py").write_text("def helper():\n    return 1\n")
    (root / "src" / "models").mkdir()
    for m in models:
        (root / "src" / "models" / f"{m}.py").write_text(f"# model {m}\nLR = 0.1\n")
    (root / ".gitignore").write_text(".sluice/\nbuild/\n")
    (root / "sluice.yaml").write_text(sluice_yaml(models, store_url))
    git_commit_all(root, f"{len(models)} models")
    return 1 + 3 * len(models)


# --------------------------------------------------------------------------- measuring


class Meter(Counting):
    """Counts S3 requests by method and kind (object, run record, listing), and bytes."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        super().__init__(app)
        self.bytes: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        kind = "object" if "/objects/" in path else "record" if "/runs/" in path else \
            "list" if method == "GET" and "prefix=" in environ.get("QUERY_STRING", "") else \
            "other"
        status: list[str] = []

        def starting(code: str, headers: Any, *rest: Any) -> Any:
            status.append(code.split()[0])
            return start_response(code, headers, *rest)

        body = list(self.app(environ, starting))  # moto's answers are small here
        with self.lock:
            missed = " (404)" if status and status[0] == "404" else ""
            self.counts[f"{method} {kind}{missed}"] += 1
            self.bytes["up"] += int(environ.get("CONTENT_LENGTH") or 0)
            self.bytes["down"] += sum(len(chunk) for chunk in body)
        return body

    def take_all(self) -> tuple[Counter[str], Counter[str]]:
        with self.lock:
            counts, self.counts = self.counts, Counter()
            sent, self.bytes = self.bytes, Counter()
        return counts, sent


@dataclass
class Measured:
    """One command: wall and CPU time, S3 requests and bytes, database writes."""

    wall_s: float
    cpu_s: float
    requests: Counter[str]
    bytes: Counter[str]
    db: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def calls_text(self) -> str:
        shown = {k: v for k, v in self.calls.items() if not k.startswith("bytes")}
        return ", ".join(f"{k} {v:,}" for k, v in sorted(shown.items())) or "0"

    def requests_text(self) -> str:
        total = sum(self.requests.values())
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.requests.items()))
        return f"{total:,} ({parts})" if total else "0"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def folder_bytes(folder: Path | None) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) \
        if folder is not None and folder.exists() else 0


def instrumented(root: Path, args: list[str], env: dict[str, str], meter: Meter,
                 scratch: Path, shared: Path | None) -> Measured:
    """``sluice ARGS --json`` through this script as ``--child``; its counts and times."""
    out = scratch / "child.json"
    meter.take_all()
    size0 = folder_bytes(shared)
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, CHILD, str(out), *args, "--json"],
                          cwd=root, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    requests, sent = meter.take_all()
    if shared is not None:  # a shared folder: what it grew by, and what was read from it
        sent["up"] = folder_bytes(shared) - size0
    child = json.loads(out.read_text()) if out.exists() else {"exit": proc.returncode}
    if proc.returncode != 0 or child["exit"] not in (0, None):
        raise RuntimeError(f"sluice {' '.join(args)} exited {child['exit']} in {root}:\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    out.unlink()
    result = json.loads(proc.stdout)
    statuses: Counter[str] = Counter()
    for stage in result.get("stages", []):
        statuses["restored" if stage.get("restored") else stage.get("status", stage.get(
            "action", "?"))] += 1
    calls = child["calls"]
    if shared is not None:
        sent["down"] = calls.get("bytes read", 0)
    return Measured(wall, cpu, requests, sent, child["db"], dict(statuses), calls)


def child_main(out_file: str, args: list[str]) -> None:
    """Count the database's write statements and commits while sluice runs in-process."""
    import sqlalchemy
    from sqlalchemy import event

    db = Counter[str]()

    def executed(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER"):
            db["statements"] += 1
            db["rows"] += max(cursor.rowcount, 0)

    event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", executed)
    event.listen(sqlalchemy.engine.Engine, "commit", lambda conn: db.update(commits=1))
    calls = count_shared_store_calls()
    sys.argv = ["sluice", *args]
    code: object = 0
    try:
        runpy.run_module("sluice", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    Path(out_file).write_text(json.dumps({"exit": code, "db": dict(db), "calls": dict(calls)}))


STORE_METHODS = ("has", "missing", "add_file", "add_bytes", "read_bytes", "checkout_file",
                 "get_run", "put_run")


def count_shared_store_calls() -> Counter[str]:
    """Count calls of the Store protocol on the shared store (not on .sluice/cache)."""
    from sluice.store.fsspec import FsspecStore
    from sluice.store.local import LocalStore

    calls = Counter[str]()

    def wrap(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if name == "missing":
                args = (list(args[0]), *args[1:])  # it may be an iterator: count it too
            result = original(self, *args, **kwargs)
            if isinstance(self, FsspecStore) or ".sluice" not in Path(self.root).parts:
                if name in ("read_bytes", "checkout_file") and isinstance(self, LocalStore):
                    calls["bytes read"] += self.object_path(args[0]).stat().st_size
                if name == "get_run":
                    calls["get_run " + ("hit" if result else "miss")] += 1
                elif name == "missing":
                    calls["missing: digests asked"] += len(set(args[0]))
                else:
                    calls[name] += 1
            return result

        setattr(cls, name, counted)

    for cls in (LocalStore, FsspecStore):
        for name in STORE_METHODS:
            wrap(cls, name)
    # How often a stage is fingerprinted and looked up in the run cache ("decided"):
    # the scheduler decides a ready stage again on every pass while it waits for a slot.
    import sluice.pipeline.plan as plan
    import sluice.pipeline.scheduler as scheduler

    decide = plan.decide

    def counted_decide(*args: Any, **kwargs: Any) -> Any:
        calls["decisions"] += 1
        return decide(*args, **kwargs)

    plan.decide = scheduler.decide = counted_decide  # type: ignore[assignment]
    return calls


def timed(root: Path, args: list[str], env: dict[str, str], repeats: int) -> tuple[Timing, float]:
    """Median wall time of plain ``sluice ARGS`` (after a warm-up) and its median CPU time."""
    cpus: list[float] = []

    def once() -> None:
        cpu0 = children_cpu()
        run(sluice_cmd(*args), root, env=env)
        cpus.append(children_cpu() - cpu0)

    timing = measure(once, repeats=repeats, warmup=1)
    return timing, sorted(cpus[1:])[len(cpus[1:]) // 2]


# --------------------------------------------------------------------------- the benchmark


@dataclass
class SizeResult:
    stages: int
    store: str
    setup_s: float
    cases: dict[str, Measured] = field(default_factory=dict)
    plan: tuple[Timing, float] | None = None
    noop: tuple[Timing, float] | None = None


def bench_size(tmp: Path, stages: int, store: str, endpoint: str, meter: Meter, repeats: int,
               full: bool, jobs: int) -> SizeResult:
    """Every scenario at one size, with the shared store on S3 (moto) or in a shared folder."""
    root = tmp / f"p{stages}-{store}"
    root.mkdir()
    shared = tmp / f"shared{stages}" if store == "file" else None
    url = shared.as_uri() if shared is not None else f"s3://{BUCKET}/size{stages}"
    env = bench_env(aws_env(endpoint))
    t0 = time.perf_counter()
    count = make_project(root, stages, url)
    result = SizeResult(count, store, time.perf_counter() - t0)

    def instrumented_run(where: Path, args: list[str]) -> Measured:
        return instrumented(where, args, env, meter, tmp, shared)
    print(f"{count:,} stages: cold run...", flush=True)
    result.cases["cold"] = instrumented_run(root, ["run", "--jobs", str(jobs)])
    print(f"{count:,} stages: no-op plan and run...", flush=True)
    result.cases["plan"] = instrumented_run(root, ["plan"])
    result.cases["noop"] = instrumented_run(root, ["run"])
    result.plan = timed(root, ["plan"], env, repeats)
    result.noop = timed(root, ["run"], env, repeats)
    if not full:
        shutil.rmtree(root, ignore_errors=True)
        return result
    print(f"{count:,} stages: one dataset changed...", flush=True)
    data = root / "data" / "d0.csv"
    data.write_text(data.read_text() + "999,1,0\n")
    git_commit_all(root, "more rows in d0")
    result.cases["change"] = instrumented_run(root, ["run", "--jobs", str(jobs)])
    print(f"{count:,} stages: fresh clone...", flush=True)
    other = tmp / f"clone{stages}"
    run(["git", "clone", "-q", root, other], tmp)
    result.cases["clone"] = instrumented_run(other, ["run", "--jobs", str(jobs)])
    shutil.rmtree(other, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    if shared is not None:
        shutil.rmtree(shared, ignore_errors=True)
    return result


CASES = {
    "cold": "first `sluice run --jobs J`, nothing cached",
    "plan": "`sluice plan`, nothing changed",
    "noop": "no-op `sluice run`",
    "change": "1 of 4 datasets changed: `sluice run --jobs J`",
    "clone": "fresh clone: `sluice run --jobs J` (all restored)",
}


def kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 10 * 1024**2 else f"{n / 1024**2:,.1f} MiB"


def report(results: list[SizeResult], repeats: int, jobs: int, full_up_to: int) -> Section:
    section = Section(
        title="Planning at scale: 1,000 and 5,000 stages, store requests and database writes",
        what=(
            "A synthetic monorepo: many independent models, each `prepare → train → "
            "evaluate` (prepare reads one of 4 shared datasets; every stage depends on its "
            "model's script and a shared helper), plus one `lint` check gating them all; "
            "cheap shell commands, outputs of about 10 KB. Shared store (`storage: cache:`): "
            "`s3://` on a moto server in the benchmark's process, which counts requests (by "
            "method and kind: object, run record, listing; 404s apart) and bytes, or a "
            "`file://` shared folder (bytes up: what it grew by). Store calls: the Store "
            "protocol's calls on the shared layer. Database: the default SQLite file, write "
            "statements, rows and commits counted through SQLAlchemy events. Scenarios run in "
            "order on one checkout; state-changing ones run once, instrumented; `plan` and the "
            f"no-op run are timed plainly, median of {repeats} after a warm-up. Wall and CPU "
            "(user + system, the commands' processes included) of whole processes. Runs that "
            f"execute stages use `--jobs {jobs}` (J): the shell commands take milliseconds, and "
            "with few slots the scheduler decides each waiting stage again on every pass "
            "(the `decisions` count), which grows with the square of the stages. Lighter "
            f"measurement above {full_up_to:,} stages: the cold run, `plan` and the no-op run "
            "only."),
        headers=["stages", "store", "scenario", "wall", "CPU", "stages by status",
                 "S3 requests", "shared-store calls", "bytes up / down",
                 "DB statements / rows / commits"],
    )
    for r in results:
        for key, label in CASES.items():
            m = r.cases.get(key)
            if m is None:
                continue
            wall, cpu = m.wall_s, m.cpu_s
            if key == "plan" and r.plan:
                wall, cpu = r.plan[0].median, r.plan[1]
            if key == "noop" and r.noop:
                wall, cpu = r.noop[0].median, r.noop[1]
            db = m.db
            section.rows.append([
                f"{r.stages:,}", r.store, label, fmt_s(wall), fmt_s(cpu),
                ", ".join(f"{k} {v:,}" for k, v in sorted(m.statuses.items())) or "–",
                m.requests_text() if r.store == "s3" else "–", m.calls_text(),
                f"{kib(m.bytes['up'])} / {kib(m.bytes['down'])}",
                f"{db.get('statements', 0):,} / {db.get('rows', 0):,} / "
                f"{db.get('commits', 0):,}"])
    for r in results:
        cold = r.cases["cold"]
        ran = cold.statuses.get("ran", 0) or 1
        assert r.plan is not None and r.noop is not None
        requests = (f"{sum(cold.requests.values()) / ran:.1f} S3 requests, "
                    if r.store == "s3" else "")
        section.findings.append(
            f"{r.stages:,} stages ({r.store}): `sluice plan` {fmt_s(r.plan[0].median)} "
            f"(CPU {fmt_s(r.plan[1])}), no-op `sluice run` {fmt_s(r.noop[0].median)} (CPU "
            f"{fmt_s(r.noop[1])}); per stage run in the cold run: {requests}"
            f"{cold.db.get('statements', 0) / ran:.2f} database write statements, "
            f"{cold.wall_s / ran * 1000:.1f} ms wall and {cold.cpu_s / ran * 1000:.1f} ms CPU "
            "(its shell command included)")
    by_store: dict[str, list[SizeResult]] = {}
    for r in results:
        by_store.setdefault(r.store, []).append(r)
    for store, found in by_store.items():
        if len(found) >= 2:
            a, b = found[0], found[-1]
            assert a.plan and b.plan and a.noop and b.noop
            section.findings.append(
                f"growth {a.stages:,} → {b.stages:,} stages ({store}, "
                f"{b.stages / a.stages:.1f}×): plan {b.plan[0].median / a.plan[0].median:.2f}×, "
                f"no-op run {b.noop[0].median / a.noop[0].median:.2f}×")
    section.notes.append(
        "The moto server shares the machine's 2 cores with sluice and answers far slower than "
        "S3: wall times of scenarios that touch an s3:// store are upper bounds; the request "
        "and byte counts are exact.")
    return section


DEFAULT_CASES = ("1000:s3", "5000:file")


def parse_case(text: str) -> tuple[int, str]:
    size, _, store = text.partition(":")
    if store not in ("s3", "file") or not size.isdigit():
        raise argparse.ArgumentTypeError(f"expected SIZE:s3 or SIZE:file, not {text!r}")
    return int(size), store


def bench(repeats: int = 3, cases: tuple[str, ...] = DEFAULT_CASES,
          full_up_to: int = 1000, jobs: int = 64) -> Section:
    require_sluice()
    endpoint, counter = start_moto(Meter)
    assert isinstance(counter, Meter)
    Bucket(endpoint)
    results = []
    with work_dir("planning-scale") as tmp:
        for size, store in map(parse_case, cases):
            results.append(bench_size(tmp, size, store, endpoint, counter, repeats,
                                      full=size <= full_up_to, jobs=jobs))
    return report(results, repeats, jobs, full_up_to)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == CHILD:
        child_main(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                        help="SIZE:STORE, STORE s3 (moto) or file (a shared folder)")
    parser.add_argument("--full-up-to", type=int, default=1000,
                        help="the change and fresh-clone scenarios only at sizes up to this")
    parser.add_argument("--jobs", type=int, default=64,
                        help="--jobs of the runs that execute stages (default 64)")
    args = parser.parse_args()
    for case in args.cases:
        parse_case(case)
    started = time.monotonic()
    bench(args.repeats, tuple(args.cases), args.full_up_to, args.jobs).print()
    print(f"planning_scale.py took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
