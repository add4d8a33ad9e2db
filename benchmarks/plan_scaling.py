"""Plan scaling: `sluice plan --base main` and `sluice affected --base main`, 250 to 2,000 stages.

A synthetic monorepo: 5 % of the stages are feature stages (``fNNN``, each
``python src/features/fNNN.py`` writing a table), the rest are model stages
(``mNNNN``, kind ``train``, each a ``models:`` entry) that read one feature
stage's output, spread evenly, and run ``python src/models/mNNNN.py``. Every
script imports a shared local helper package (``src/common``: ``helpers``, which
imports ``schema``), so sluice's import discovery has files to follow for every
stage. The pipeline is committed on ``main``; a branch then edits one feature
script and commits. On that branch (clean working tree) both commands compare
the working tree with ``main``, from git alone: the edited feature stage and
the models that read it are affected.

Each command is timed as a whole process, median of 5 after a warm-up, the
commands taking turns, at 250, 500, 1,000 and 2,000 stages. Anchor (DVC has no
change-impact command): `dvc status` on the same pipeline as dvc.yaml (deps:
the script and the helper files), recorded as run with `dvc commit` and then
the same one-script edit — what the other tool does at this size.

Target: < 1 s at 1,000 stages, and near-linear growth (at most 2.2× per doubling
from 1,000 to 2,000 stages, above start-up: no worse than n log n).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from _common import (
    Section,
    Target,
    Timing,
    dvc_bin,
    dvc_init,
    fmt_s,
    git_commit_all,
    git_init,
    measure_interleaved,
    require_sluice,
    run,
    run_json,
    sluice_cmd,
    verdict,
    work_dir,
)

SIZES = (250, 500, 1000, 2000)
FEATURE_SHARE = 0.05
TARGET_S = 1.0
TARGET_AT = 1000
# Near-linear: at the largest doubling, the time above start-up grows at most this much
# (n log n from 1,000 to 2,000 stages would be 2 × log 2000 / log 1000 = 2.2×).
MAX_GROWTH = 2.2
EDITED_FEATURE = 3

HELPERS = """\
\"\"\"Helpers shared by every feature and model script.\"\"\"

from common.schema import COLUMNS


def load_table(path):
    with open(path) as handle:
        return [dict(zip(COLUMNS, line.split(","))) for line in handle]


def save(path, text):
    with open(path, "w") as handle:
        handle.write(text)
"""

SCHEMA = """\
COLUMNS = ("id", "x", "y")
"""

FEATURE = """\
import sys

from common import helpers

# feature table {name}
helpers.save(sys.argv[1], "".join(f"{{i}},{{i * {k}}},{{i % 2}}\\n" for i in range(100)))
"""

MODEL = """\
import sys

from common.helpers import load_table, save

# model {name}: trained on one feature table
rows = load_table(sys.argv[1])
save(sys.argv[2], "{name} " + str(len(rows)) + "\\n")
"""


def layout(n: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Feature stage names, and (model, feature it reads) pairs, for ``n`` stages."""
    nfeat = max(1, round(n * FEATURE_SHARE))
    features = [f"f{i:03d}" for i in range(nfeat)]
    models = [(f"m{i:04d}", features[i % nfeat]) for i in range(n - nfeat)]
    return features, models


def write_sources(root: Path, features: list[str], models: list[tuple[str, str]]) -> None:
    common = root / "src" / "common"
    common.mkdir(parents=True)
    (common / "__init__.py").write_text("")
    (common / "helpers.py").write_text(HELPERS)
    (common / "schema.py").write_text(SCHEMA)
    (root / "src" / "features").mkdir()
    (root / "src" / "models").mkdir()
    for k, name in enumerate(features):
        (root / "src" / "features" / f"{name}.py").write_text(FEATURE.format(name=name, k=k))
    for name, _ in models:
        (root / "src" / "models" / f"{name}.py").write_text(MODEL.format(name=name))
    (root / ".gitignore").write_text("build/\n")


def sluice_yaml(features: list[str], models: list[tuple[str, str]]) -> str:
    lines = ["version: 1", "stages:"]
    for name in features:
        lines += [f"  {name}:",
                  f"    cmd: python src/features/{name}.py ${{outs.table}}",
                  f"    outs: {{table: build/features/{name}.csv}}"]
    for name, feature in models:
        lines += [f"  {name}:",
                  "    kind: train",
                  f"    cmd: python src/models/{name}.py ${{stages.{feature}.outs.table}} "
                  "${outs.model}",
                  f"    outs: {{model: build/models/{name}.pkl}}"]
    lines.append("models:")
    lines += [f"  {name}: {{train: {name}, artifact: model}}" for name, _ in models]
    return "\n".join(lines) + "\n"


HELPER_DEPS = "src/common/__init__.py, src/common/helpers.py, src/common/schema.py"


def dvc_yaml(features: list[str], models: list[tuple[str, str]]) -> str:
    lines = ["stages:"]
    for name in features:
        out = f"build/features/{name}.csv"
        lines += [f"  {name}:",
                  f"    cmd: python src/features/{name}.py {out}",
                  f"    deps: [src/features/{name}.py, {HELPER_DEPS}]",
                  f"    outs: [{out}]"]
    for name, feature in models:
        src, out = f"build/features/{feature}.csv", f"build/models/{name}.pkl"
        lines += [f"  {name}:",
                  f"    cmd: python src/models/{name}.py {src} {out}",
                  f"    deps: [src/models/{name}.py, {src}, {HELPER_DEPS}]",
                  f"    outs: [{out}]"]
    return "\n".join(lines) + "\n"


def edit_feature(root: Path, features: list[str]) -> str:
    name = features[min(EDITED_FEATURE, len(features) - 1)]
    path = root / "src" / "features" / f"{name}.py"
    path.write_text(path.read_text() + "# tweaked on the branch\n")
    return name


def setup_sluice(root: Path, n: int) -> int:
    """The repository on branch `change`; returns how many stages the edit must affect."""
    features, models = layout(n)
    git_init(root)
    write_sources(root, features, models)
    (root / "sluice.yaml").write_text(sluice_yaml(features, models))
    git_commit_all(root, f"{n} stages")
    run(["git", "checkout", "-q", "-b", "change"], root)
    edited = edit_feature(root, features)
    git_commit_all(root, "tweak one feature")
    return 1 + sum(1 for _, f in models if f == edited)


def setup_dvc(root: Path, n: int) -> None:
    """The same pipeline for DVC, recorded as run (`dvc commit`), then the same edit."""
    features, models = layout(n)
    git_init(root)
    write_sources(root, features, models)
    dvc_init(root)
    (root / "dvc.yaml").write_text(dvc_yaml(features, models))
    for folder in ("features", "models"):
        (root / "build" / folder).mkdir(parents=True)
    for name in features:
        (root / "build" / "features" / f"{name}.csv").write_text(f"{name}\n")
    for name, _ in models:
        (root / "build" / "models" / f"{name}.pkl").write_text(f"{name}\n")
    run([dvc_bin(), "commit", "-q", "-f"], root)
    git_commit_all(root, f"{n} stages")
    edited = edit_feature(root, features)
    git_commit_all(root, "tweak one feature")
    out = run([dvc_bin(), "status"], root)
    if edited not in out:
        raise RuntimeError(f"dvc status does not see the edited feature script:\n{out[:2000]}")


def check_sluice(root: Path, expected: int) -> None:
    impact = run_json(sluice_cmd("affected", "--base", "main", "--json"), root)
    plan = run_json(sluice_cmd("plan", "--base", "main", "--json"), root)
    planned = [s for s in plan["stages"] if s["action"] == "run"]
    if len(impact["affected_stages"]) != expected or len(planned) != expected:
        raise RuntimeError(f"expected {expected} affected stages, got "
                           f"{len(impact['affected_stages'])} (affected) and "
                           f"{len(planned)} (plan)")


def growth(times: list[float]) -> list[str]:
    return ["" if i == 0 else f"{times[i] / times[i - 1]:.2f}×" for i in range(len(times))]


def bench(repeats: int = 5, sizes: tuple[int, ...] = SIZES, with_dvc: bool = True) -> Section:
    require_sluice()
    affected: dict[int, int] = {}
    fns: dict[str, Callable[[], object]] = {}
    with work_dir("plan-scaling") as tmp:
        floor_root = tmp / "floor"
        floor_root.mkdir()
        fns["floor"] = partial(run, sluice_cmd("--help"), floor_root)
        for n in sizes:
            print(f"setting up {n} stages...", flush=True)
            sroot, droot = tmp / f"sluice-{n}", tmp / f"dvc-{n}"
            sroot.mkdir()
            affected[n] = setup_sluice(sroot, n)
            check_sluice(sroot, affected[n])
            fns[f"plan {n}"] = partial(run, sluice_cmd("plan", "--base", "main"), sroot)
            fns[f"affected {n}"] = partial(run, sluice_cmd("affected", "--base", "main"), sroot)
            if with_dvc:
                droot.mkdir()
                setup_dvc(droot, n)
                fns[f"dvc status {n}"] = partial(run, [dvc_bin(), "status"], droot)
        # Every size in every round, so that all sizes see the same background load
        # and the growth factors compare like with like.
        print("timing...", flush=True)
        timings = measure_interleaved(fns, repeats=repeats, warmup=1)
        for n in sizes:  # the answers did not change meanwhile
            check_sluice(tmp / f"sluice-{n}", affected[n])

    results: dict[int, dict[str, Timing]] = {
        n: {key: timings[f"{key} {n}"] for key in ("plan", "affected", "dvc status")
            if f"{key} {n}" in timings} for n in sizes}
    floor = timings["floor"].median
    section = Section(
        title="Plan scaling: `sluice plan --base` and `sluice affected`, 250–2,000 stages",
        what=(
            "A synthetic monorepo: 5 % feature stages (each `python src/features/fNNN.py`), "
            "95 % model stages (kind `train`, each a `models:` entry) that each read one "
            "feature stage's output and run `python src/models/mNNNN.py`; every script "
            "imports a shared local helper package (`src/common/helpers.py`, which imports "
            "`schema.py`), so import discovery follows three files per stage. Committed on "
            "`main`; a branch edits one feature script and commits. On the branch, "
            "`sluice plan --base main` and `sluice affected --base main` (working tree vs "
            "merge base, from git alone) are timed as whole processes, median of "
            f"{repeats} runs after a warm-up, all commands at all sizes taking turns (so every "
            "size sees the same background load); both are checked to "
            "find the edited feature stage and exactly the models that read it. Anchor: "
            "`dvc status` on the same pipeline as `dvc.yaml` (deps: the script and the "
            "helper files, which DVC must be told), recorded as run with `dvc commit -f`, "
            "after the same edit (DVC has no change-impact command; this is what it does at "
            "this size)."),
        headers=["stages", "affected", "command", "median", "min–max (s)", "per doubling",
                 "above start-up ¹", "per doubling ¹"],
    )
    commands = [("plan", "`sluice plan --base main`"),
                ("affected", "`sluice affected --base main`")]
    if with_dvc:
        commands.append(("dvc status", "`dvc status`"))
    top: dict[str, float] = {}  # growth above start-up at the largest doubling
    for key, label in commands:
        times = [results[n][key].median for n in sizes]
        net = [max(t - floor, 1e-3) for t in times]
        for n, t, g, a, ga in zip(sizes, times, growth(times), net, growth(net), strict=True):
            section.rows.append([f"{n:,}", str(affected[n]), label, fmt_s(t),
                                 results[n][key].spread(), g, fmt_s(a), ga])
        top[key] = net[-1] / net[-2]

    at = TARGET_AT if TARGET_AT in sizes else sizes[len(sizes) // 2]
    plan_at, affected_at = results[at]["plan"].median, results[at]["affected"].median
    fast = max(plan_at, affected_at) < TARGET_S
    linear = max(top["plan"], top["affected"]) <= MAX_GROWTH
    doubling = f"{sizes[-2]:,}→{sizes[-1]:,} stages"
    section.targets = [
        Target(f"`sluice plan --base` / `affected` at {at:,} stages", f"< {TARGET_S:g} s",
               f"{plan_at:.3f} s / {affected_at:.3f} s", fast),
        Target(f"plan / affected growth, {doubling}",
               f"near-linear (≤ {MAX_GROWTH:g}× per doubling, above start-up)",
               f"{top['plan']:.2f}× / {top['affected']:.2f}×", linear),
    ]
    section.findings = [
        f"at {at:,} stages: `sluice plan --base main` {fmt_s(plan_at)}, `sluice affected "
        f"--base main` {fmt_s(affected_at)} (target < {TARGET_S:g} s: {verdict(fast)})",
        f"growth above start-up, {doubling}: {top['plan']:.2f}× (plan), "
        f"{top['affected']:.2f}× (affected) — t ∝ n^"
        f"{math.log2(top['plan']):.2f} and n^{math.log2(top['affected']):.2f} "
        f"(target ≤ {MAX_GROWTH:g}×, i.e. no worse than n log n: {verdict(linear)})",
    ]
    if with_dvc:
        big = sizes[-1]
        dvc_t, plan_t = results[big]["dvc status"].median, results[big]["plan"].median
        section.findings.append(
            f"`dvc status` on the same pipeline: {fmt_s(dvc_t)} at {big:,} stages, "
            f"{dvc_t / plan_t:.1f}× `sluice plan --base main`; {top['dvc status']:.2f}× "
            f"per doubling ({doubling})")
    section.notes.append(
        f"¹ minus sluice's start-up floor, `sluice --help`: {fmt_s(floor)} (median), so "
        "the growth factors show how the work itself scales.")
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--no-dvc", action="store_true", help="skip the `dvc status` anchor")
    args = parser.parse_args()
    bench(args.repeats, tuple(args.sizes), with_dvc=not args.no_dvc).print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
