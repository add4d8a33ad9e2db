"""Paired bootstrap of ROC AUC and accuracy on 1,000,000 examples × 10,000 resamples.

sluice's ``paired_bootstrap`` (BCa, its automatic strategy: exact multinomial cell counts
for accuracy, linearised resampling for ROC AUC at this size) against
``scipy.stats.bootstrap(paired=True)`` with vectorised statistics on the same data.
SciPy resamples example by example, so 10,000 × 1,000,000 is out of its reach (10¹⁰
index draws; 80 GB for the index matrix without ``batch``; and BCa's jackknife would
evaluate the statistic 10⁶ times on 10⁶ − 1 examples): it runs a few resamples with
``batch`` and ``method="percentile"``, and its time is extrapolated linearly in the
number of resamples. sluice's own example-by-example strategy is measured the same way.

Each measurement runs in a fresh child process that generates the data (seeded), then
times the call; memory is the call's peak resident memory above what the process held
before it (``getrusage`` max RSS minus the RSS before the call).

Target: under 5 s per metric, bounded memory, faster than SciPy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from _common import Section, Target, bench_env, faster, require_sluice, verdict

N = 1_000_000
RESAMPLES = 10_000
TARGET_S = 5.0
SCIPY_AUC_RESAMPLES, SCIPY_ACC_RESAMPLES = 10, 50
EXACT_RESAMPLES = 100


# --------------------------------------------------------------------------- child side


def _data(n: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(2024)
    y = rng.integers(0, 2, n)
    sc = 1 / (1 + np.exp(-(1.05 * (2 * y - 1) + rng.normal(size=n))))
    sb = 1 / (1 + np.exp(-((2 * y - 1) + rng.normal(size=n))))
    return {"y": y, "sc": sc, "sb": sb}


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    d = _data(spec["n"])
    job, metric, resamples = spec["job"], spec["metric"], spec["resamples"]
    if job.startswith("sluice"):
        from sluice.stats.paired import paired_bootstrap
        from sluice.stats.prediction_columns import from_arrays

        cand = from_arrays(d["y"], (d["sc"] > 0.5).astype(int), d["sc"])
        base = from_arrays(d["y"], (d["sb"] > 0.5).astype(int), d["sb"])
        exact = job == "sluice-exact"

        def call() -> tuple[float, float, str]:
            iv = paired_bootstrap(metric, cand, base, resamples,
                                  method="percentile" if exact else "bca",
                                  strategy="exact" if exact else "auto")
            return iv.low, iv.high, iv.detail
    else:
        import scipy.stats as ss  # type: ignore[import-untyped, unused-ignore]

        def auc(y: Any, s: Any) -> Any:
            ranks = ss.rankdata(s, axis=-1)
            pos = y == 1
            n1 = pos.sum(-1)
            return ((ranks * pos).sum(-1) - n1 * (n1 + 1) / 2) / (n1 * (y.shape[-1] - n1))

        if metric == "roc_auc":
            data = (d["y"], d["sc"], d["sb"])

            def stat(y: Any, c: Any, b: Any, axis: int = -1) -> Any:
                return auc(y, c) - auc(y, b)
        else:
            data = tuple(x.astype(np.int8) for x in (d["y"], d["sc"] > 0.5, d["sb"] > 0.5))

            def stat(y: Any, c: Any, b: Any, axis: int = -1) -> Any:
                return (c == y).mean(-1) - (b == y).mean(-1)

        def call() -> tuple[float, float, str]:
            ci = ss.bootstrap(data, stat, paired=True, n_resamples=resamples,
                              batch=spec["batch"], method="percentile",
                              rng=np.random.default_rng(0)).confidence_interval
            return float(ci.low), float(ci.high), f"batch={spec['batch']}"

    before = _rss()
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        low, high, detail = call()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"seconds": statistics.median(times), "all": times, "extra_bytes": peak - before,
           "low": low, "high": high, "detail": detail}
    if spec.get("delong"):
        from sluice.stats.paired import delong

        iv = delong(d["y"], d["sc"], d["sb"]).interval
        out["delong"] = [iv.low, iv.high]
    return out


# --------------------------------------------------------------------------- parent side


def measure_child(**spec: Any) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=bench_env())
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {spec}\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench(repeats: int = 3) -> Section:
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for metric in ("roc_auc", "accuracy"):
        print(f"sluice {metric}, {N:,} × {RESAMPLES:,}...", flush=True)
        runs["sluice", metric] = measure_child(job="sluice", metric=metric, n=N,
                                               resamples=RESAMPLES, repeats=repeats,
                                               delong=metric == "roc_auc")
        print(f"sluice example by example, {metric}, {N:,} × {EXACT_RESAMPLES}...", flush=True)
        runs["exact", metric] = measure_child(job="sluice-exact", metric=metric, n=N,
                                              resamples=EXACT_RESAMPLES, repeats=1)
        few = SCIPY_AUC_RESAMPLES if metric == "roc_auc" else SCIPY_ACC_RESAMPLES
        print(f"scipy {metric}, {N:,} × {few}...", flush=True)
        runs["scipy", metric] = measure_child(job="scipy", metric=metric, n=N, resamples=few,
                                              batch=5 if metric == "roc_auc" else 10,
                                              repeats=1)

    section = Section(
        title=f"Paired bootstrap: {N:,} examples × {RESAMPLES:,} resamples",
        what=__doc__.split("\n\n")[1].replace("\n", " ") + " Child processes; sluice's "
        f"figure is the median of {repeats} calls.",
        headers=["metric", "method", "resamples run", "time", "time for 10,000",
                 "peak memory of the call"])
    for metric in ("roc_auc", "accuracy"):
        s, e, p = runs["sluice", metric], runs["exact", metric], runs["scipy", metric]
        few = SCIPY_AUC_RESAMPLES if metric == "roc_auc" else SCIPY_ACC_RESAMPLES
        section.rows += [
            [metric, f"**sluice** BCa, auto ({s['detail'].split(' (')[0]})", f"{RESAMPLES:,}",
             f"{s['seconds']:.2f} s", f"{s['seconds']:.2f} s", f"{s['extra_bytes'] / 1e6:,.0f} MB"],
            [metric, "sluice, example by example (percentile)", str(EXACT_RESAMPLES),
             f"{e['seconds']:.2f} s", f"≈ {e['seconds'] * RESAMPLES / EXACT_RESAMPLES:,.0f} s "
             "(extrapolated)", f"{e['extra_bytes'] / 1e6:,.0f} MB"],
            [metric, f"scipy.stats.bootstrap, percentile, {p['detail']}", str(few),
             f"{p['seconds']:.2f} s", f"≈ {p['seconds'] * RESAMPLES / few:,.0f} s "
             "(extrapolated)", f"{p['extra_bytes'] / 1e6:,.0f} MB"],
        ]
        ratio = p["seconds"] * RESAMPLES / few / s["seconds"]
        section.findings.append(
            f"{metric}: sluice {s['seconds']:.2f} s (target < {TARGET_S:.0f} s: "
            f"{verdict(s['seconds'] < TARGET_S)}), **{faster(ratio)}** than SciPy's "
            f"extrapolated {p['seconds'] * RESAMPLES / few:,.0f} s; interval "
            f"[{s['low']:.5f}, {s['high']:.5f}]")
        section.targets.append(Target(f"paired bootstrap, {metric}, 1M × 10k", "< 5 s, "
                                      "faster than SciPy", f"{s['seconds']:.2f} s "
                                      f"({faster(ratio)})", s["seconds"] < TARGET_S
                                      and ratio > 1))
    s = runs["sluice", "roc_auc"]
    lo, hi = s["delong"]
    width = hi - lo
    section.findings.append(
        f"check of the linearised ROC AUC interval: DeLong's interval on the same data is "
        f"[{lo:.5f}, {hi:.5f}]; the bootstrap's ends differ from it by "
        f"{abs(s['low'] - lo) / width:.1%} and {abs(s['high'] - hi) / width:.1%} of its width")
    section.notes.append("Memory is the resident-set peak of the call above the process's "
                         "resident memory before it (data and imports excluded).")
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    require_sluice()
    bench(args.repeats).print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
