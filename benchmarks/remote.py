"""Remote stages on Ray: overhead per stage and throughput, against the local executor.

Starts its own two-node Ray cluster (``tests/ray_cluster.py``: a head with 2 CPUs
and the Jobs API, a second node with 1 CPU, each with its own short temp dir under
/tmp; stopped at the end by its processes, never by ``ray stop``, which would stop
every Ray cluster of the machine's user). The project's ``sluice.yaml`` names the
cluster as ``executors: {ray: {type: ray, address: ...}}`` and a shared store
``storage: {cache: file:///...}`` (a folder the workers share), and the remote
stages say ``executor: ray``.

1. Overhead: one trivial stage (``echo``) forced to run (``sluice run --force
   STAGE --json``), on Ray and locally, the two taking turns. The breakdown comes
   from the Ray job's own record (Jobs API: submitted at, ended at) and sluice's
   result (the command's wall time inside the capsule): before submit (start-up,
   plan, spec and snapshot to the store), in Ray (job supervisor, `sluice stage
   exec` start-up, materialising, the command, outputs to the store), after the
   job ended (noticing it, restoring the outputs, the ledger).
   Target: ≤ 1.5 s above the local executor per stage.
2. Throughput: 50 independent ``sleep 2`` stages, forced: on the cluster (3 CPUs,
   one per stage) vs the local executor with ``--jobs 1``.
   Target: the cluster finishes first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    REPO_ROOT,
    Section,
    Target,
    bench_env,
    fmt_s,
    git_commit_all,
    git_init,
    markdown_table,
    measure_interleaved,
    require_sluice,
    run_json,
    sluice_cmd,
    verdict,
    work_dir,
)

SLEEPERS = 50
SLEEP_S = 2
OVERHEAD_TARGET_S = 1.5


def sluice_yaml(address: str, store: Path) -> str:
    lines = ["version: 1", f"storage: {{cache: '{store.as_uri()}'}}",
             "executors:", "  ray:", "    type: ray", f"    address: '{address}'",
             "stages:",
             "  trivial_ray:", "    executor: ray", "    cmd: echo hi > ${outs.x}",
             "    outs: {x: out/trivial_ray.txt}",
             "  trivial_local:", "    cmd: echo hi > ${outs.x}",
             "    outs: {x: out/trivial_local.txt}"]
    for where in ("ray", "local"):
        for i in range(SLEEPERS):
            lines += [f"  sleep_{where}_{i:02d}:",
                      f"    cmd: sleep {SLEEP_S} && echo {i} > ${{outs.x}}",
                      f"    outs: {{x: out/sleep_{where}_{i:02d}.txt}}"]
            if where == "ray":
                lines.append("    executor: ray")
    return "\n".join(lines) + "\n"


def make_project(root: Path, address: str, store: Path) -> None:
    root.mkdir()
    git_init(root)
    (root / "sluice.yaml").write_text(sluice_yaml(address, store))
    (root / ".gitignore").write_text(".sluice/\nout/\n")
    git_commit_all(root, "pipeline")


def forced(root: Path, env: dict[str, str], stages: list[str], jobs: int | None = None
           ) -> dict[str, Any]:
    """`sluice run --force STAGES --json`, checked to have run every stage."""
    args = ["run", "--force", *stages, "--json", *(["--jobs", str(jobs)] if jobs else [])]
    result: dict[str, Any] = run_json(sluice_cmd(*args), root, env=env)
    statuses = {s["stage"]: s["status"] for s in result["stages"]}
    if any(statuses.get(s) != "ran" for s in stages):
        raise RuntimeError(f"not every stage ran: {statuses}")
    return result


def ray_jobs(address: str, stage: str, since: float) -> list[Any]:
    """The Ray jobs sluice submitted for ``stage`` since ``since`` (epoch seconds)."""
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(address).list_jobs()
    return [j for j in jobs if (j.metadata or {}).get("sluice_stage") == stage
            and (j.start_time or 0) / 1000 >= since - 1]


def capsule_result(log: Path) -> dict[str, Any]:
    """The capsule's one-line JSON result: the last line of the job's log sluice copied."""
    for line in reversed(log.read_text(encoding="utf-8").splitlines()):
        if line.startswith("{") and line.endswith("}"):
            found: dict[str, Any] = json.loads(line)
            return found
    raise RuntimeError(f"no capsule result in {log}")


def cluster_cpu_s(cluster: Any) -> float:
    """CPU seconds (user + system) of the cluster's processes and the children they
    reaped (job supervisors, capsules): how much of the machine Ray's jobs cost."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in cluster.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / tick


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def throughput(root: Path, env: dict[str, str], cluster: Any, stages: list[str],
               jobs: int | None = None) -> tuple[float, float, float]:
    """Wall seconds of one forced run of ``stages``, sluice's CPU seconds and the
    cluster's CPU seconds during it."""
    cpu0, ray0, t0 = children_cpu_s(), cluster_cpu_s(cluster), time.perf_counter()
    forced(root, env, stages, jobs=jobs)
    wall = time.perf_counter() - t0
    return wall, children_cpu_s() - cpu0, cluster_cpu_s(cluster) - ray0


def overhead(root: Path, env: dict[str, str], address: str, repeats: int
             ) -> tuple[dict[str, list[float]], list[dict[str, float]]]:
    """Wall times of the trivial stage on Ray and locally, and the Ray runs' breakdowns."""
    walls: dict[str, list[float]] = {"ray": [], "local": []}
    phases: list[dict[str, float]] = []

    def once(where: str) -> None:
        stage = f"trivial_{where}"
        t0 = time.time()
        forced(root, env, [stage])
        t1 = time.time()
        walls[where].append(t1 - t0)
        if where != "ray":
            return
        jobs = ray_jobs(address, stage, t0)
        if not jobs:
            raise RuntimeError("sluice ran the stage, but the cluster has no job for it")
        job = max(jobs, key=lambda j: j.start_time or 0)
        submitted, ended = job.start_time / 1000, job.end_time / 1000
        # The stage's wall_s in sluice's result is the Ray job's (submitted → ended); the
        # command's own time is in the capsule's result, the last line of the job's log.
        capsule = capsule_result(root / ".sluice" / "logs" / f"{stage}.log")
        command = float(capsule.get("wall_s") or 0.0)
        phases.append({"before submit (start-up, plan, spec to the store)": submitted - t0,
                       "in Ray: job start-up, capsule start-up and store I/O":
                           ended - submitted - command,
                       "the command (in the capsule)": command,
                       "after the job ended (noticed, outputs restored, ledger, exit)":
                           t1 - ended})

    measure_interleaved({"ray": lambda: once("ray"), "local": lambda: once("local")},
                        repeats=repeats, warmup=1)
    # measure_interleaved's warm-up calls appended too: keep the timed ones only.
    return ({k: v[-repeats:] for k, v in walls.items()}, phases[-repeats:])


def bench(repeats: int = 5) -> Section:
    require_sluice()
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.ray_cluster import start_cluster
    except ImportError as exc:
        raise RuntimeError(f"tests/ray_cluster.py is needed to start the Ray cluster: {exc}"
                           ) from None
    print("starting a 2-node Ray cluster...", flush=True)
    started = time.monotonic()
    cluster = start_cluster()
    startup = time.monotonic() - started
    try:
        with work_dir("remote") as tmp:
            root, store = tmp / "project", tmp / "store"
            make_project(root, cluster.address, store)
            env = bench_env()
            print("overhead of one trivial stage...", flush=True)
            walls, phases = overhead(root, env, cluster.address, repeats)
            print(f"{SLEEPERS} × sleep {SLEEP_S}: on Ray...", flush=True)
            on_ray = throughput(root, env, cluster,
                                [f"sleep_ray_{i:02d}" for i in range(SLEEPERS)])
            print(f"{SLEEPERS} × sleep {SLEEP_S}: locally, --jobs 1...", flush=True)
            local = throughput(root, env, cluster,
                               [f"sleep_local_{i:02d}" for i in range(SLEEPERS)], jobs=1)
            load = os.getloadavg()[0]
    finally:
        cluster.stop()
    return report(repeats, startup, walls, phases, on_ray, local, load)


def report(repeats: int, startup: float, walls: dict[str, list[float]],
           phases: list[dict[str, float]], on_ray: tuple[float, float, float],
           local: tuple[float, float, float], load: float) -> Section:
    ray_s, local_s = on_ray[0], local[0]
    ray_med, local_med = statistics.median(walls["ray"]), statistics.median(walls["local"])
    over = ray_med - local_med
    section = Section(
        title="Remote stages on Ray: overhead per stage, throughput",
        what=(
            "A local two-node Ray cluster (head: 2 CPUs and the Jobs API; second node: "
            "1 CPU; each with its own temp dir) started by the benchmark "
            f"(in {startup:.0f} s); the project names it under `executors:` and shares a "
            "`file://` store with it. Overhead: one trivial stage (`echo`), "
            f"`sluice run --force STAGE`, on Ray and locally, taking turns, median of {repeats} "
            f"after a warm-up. Throughput: {SLEEPERS} independent `sleep {SLEEP_S}` stages, "
            "forced, on the cluster vs locally with `--jobs 1`. Whole processes, wall time."),
        headers=["case", "median", "min–max (s)"],
    )
    section.rows = [
        ["trivial stage on Ray", fmt_s(ray_med),
         f"{min(walls['ray']):.3f}–{max(walls['ray']):.3f}"],
        ["trivial stage, local executor", fmt_s(local_med),
         f"{min(walls['local']):.3f}–{max(walls['local']):.3f}"],
        [f"{SLEEPERS} × `sleep {SLEEP_S}` on Ray (3 CPUs)", fmt_s(ray_s), ""],
        [f"{SLEEPERS} × `sleep {SLEEP_S}` locally, `--jobs 1`", fmt_s(local_s), ""],
    ]
    section.blocks.append(
        f"CPU seconds during the {SLEEPERS} stages (load average {load:.1f} at the end): "
        f"on Ray, sluice {on_ray[1]:.1f} s and the cluster's processes {on_ray[2]:.1f} s "
        f"({on_ray[2] / SLEEPERS:.2f} s per job: job supervisor actor, runtime env, "
        f"capsule); locally, sluice {local[1]:.1f} s.")
    names = list(phases[0]) if phases else []
    breakdown = [[name, fmt_s(statistics.median(p[name] for p in phases))] for name in names]
    if breakdown:
        section.blocks.append("Where a remote stage's time goes (median of the Ray runs):\n\n"
                              + markdown_table(["phase", "median"], breakdown))
    ok_over, ok_tp = over <= OVERHEAD_TARGET_S, ray_s < local_s
    section.targets = [
        Target("overhead of a remote (Ray) stage over the local executor",
               f"≤ {OVERHEAD_TARGET_S:g} s", f"{over:.2f} s ({ray_med:.2f} s vs "
               f"{local_med:.2f} s)", ok_over),
        Target(f"{SLEEPERS} × `sleep {SLEEP_S}` on a 2-node Ray cluster vs local `--jobs 1`",
               "faster", f"{ray_s:.1f} s vs {local_s:.1f} s", ok_tp),
    ]
    section.findings = [
        f"overhead per remote stage: {over:+.2f} s (Ray {ray_med:.2f} s, local "
        f"{local_med:.2f} s; target ≤ {OVERHEAD_TARGET_S:g} s: {verdict(ok_over)})",
        f"{SLEEPERS} × sleep {SLEEP_S}: Ray {ray_s:.1f} s, local --jobs 1 {local_s:.1f} s "
        f"({local_s / ray_s:.1f}× faster on the cluster; ideal {SLEEPERS * SLEEP_S / 3:.0f} s "
        f"on 3 CPUs: target faster than local: {verdict(ok_tp)})",
    ]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    bench(args.repeats).print()
    print(f"remote.py took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
