"""Broken sluice.yaml files: every error says what is wrong, where, and how to fix it.

Each case gives the file, the exact message and the exact ``file:line:column``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sluice.config.load import load_config
from sluice.errors import ConfigError, ConfigErrors
from tests.unit._util import problems, write_project


@dataclass(frozen=True)
class Case:
    id: str
    yaml: str
    message: str
    line: int
    column: int
    file: str = "sluice.yaml"
    files: dict[str, str] = field(default_factory=dict)


PARAMS = {"params.yaml": "train:\n  lr: 0.1\n  epochs: 3\nseed: 1\n"}

CASES = [
    # --- YAML itself -------------------------------------------------------
    Case("unclosed-quote", """\
stages:
  a:
    cmd: "echo hi
""", "sluice.yaml is not valid YAML: this quoted string is never closed", 3, 10),
    Case("bad-indentation", """\
stages:
  a:
    cmd: echo
   outs: {x: x.txt}
""", "sluice.yaml is not valid YAML: this line's indentation does not line up with the "
         "lines above it", 4, 4),
    Case("tab-indentation", "stages:\n\ta: {cmd: x}\n",
         "sluice.yaml is not valid YAML: a tab character; YAML indentation must use spaces",
         2, 1),
    Case("unclosed-flow-list", """\
stages:
  a:
    cmd: x
    deps: [a.txt, b.txt
""", "sluice.yaml is not valid YAML: the `[` opened at line 4, column 11 is not closed "
         "with `]`", 5, 1),
    Case("colon-in-value", """\
stages:
  a:
    cmd: echo a: b
""", "sluice.yaml is not valid YAML: unexpected `:`; put the value in quotes if it "
         "contains `: `", 3, 16),
    Case("undefined-alias", "stages: *base\n",
         "sluice.yaml is not valid YAML: `*base` refers to no anchor; define `&base` before "
         "using it", 1, 9),
    Case("recursive-alias", "stages: &s {a: *s}\n",
         "this anchored value contains an alias to itself, which would make it endless",
         1, 9),
    Case("duplicate-stage", """\
stages:
  a:
    cmd: x
  a:
    cmd: y
""", "duplicate key `a` in `stages` (first defined at line 2)", 4, 3),
    Case("duplicate-field", """\
stages:
  a:
    cmd: x
    cmd: y
""", "duplicate key `cmd` in `stages.a` (first defined at line 3)", 4, 5),
    Case("mapping-as-key", "stages:\n  ? [a]\n  : x\n",
         "a mapping key must be a plain name, not a list or mapping", 2, 5),
    # --- the file as a whole -------------------------------------------------
    Case("empty-file", "", "sluice.yaml is empty", 1, 1),
    Case("comments-only", "# nothing yet\n", "sluice.yaml is empty", 1, 1),
    Case("top-level-list", "- a\n- b\n",
         "sluice.yaml must be a mapping with `stages:` at the top level", 1, 1),
    Case("unknown-top-level-key", """\
version: 1
stage:
  a:
    cmd: x
""", "unknown key `stage` at the top level; did you mean `stages`?", 2, 1),
    Case("bad-version", "version: 2\nstages: {}\n",
         "unsupported `version: 2`; this sluice reads version 1", 1, 10),
    Case("quoted-version", "version: '1'\n",
         "`version` must be the number 1, not the string `1`", 1, 10),
    Case("stages-list", "stages:\n  - a\n  - b\n",
         "top-level `stages` must be a mapping of stage names to stages, not a list", 2, 3),
    Case("remote-not-a-string", "remote: [a, b]\n",
         "top-level `remote` must be a folder or URL of a shared store, not a list", 1, 9),
    Case("params-not-a-path", "params: 5\n",
         "top-level `params` must be the path of a params file (YAML or JSON), not `5`", 1, 9),
    # --- stage keys and types ------------------------------------------------
    Case("unknown-stage-key", """\
stages:
  prepare:
    cmd: x
  train:
    cmd: python train.py
    deps_on: [prepare]
""", "unknown key `deps_on` in stage `train`; did you mean `deps`?", 6, 5),
    Case("unknown-resources-key", """\
stages:
  train:
    cmd: x
    resources:
      gpu: 1
""", "unknown key `gpu` in `resources` of stage `train`; did you mean `gpus`?", 5, 7),
    Case("missing-cmd", """\
stages:
  train:
    deps: [train.py]
""", "stage `train` is missing the required key `cmd`", 2, 3),
    Case("misspelt-cmd-reported-once", """\
stages:
  train:
    cdm: python train.py
""", "unknown key `cdm` in stage `train`; did you mean `cmd`?", 3, 5),
    Case("stage-is-a-string", "stages:\n  train: python train.py\n",
         "stage `train` must be a mapping of keys to values, not the string "
         "`python train.py`", 2, 10),
    Case("stage-is-empty", "stages:\n  train:\n",
         "stage `train` must be a mapping of keys to values, not empty", 2, 3),
    Case("cmd-int", "stages:\n  train:\n    cmd: 5\n",
         "`cmd` of stage `train` must be a shell command string, not `5`", 3, 10),
    Case("deps-mapping", "stages:\n  train:\n    cmd: x\n    deps: {a: b}\n",
         "`deps` of stage `train` must be a list of paths or globs, not a mapping", 4, 11),
    Case("deps-item-int", "stages:\n  train:\n    cmd: x\n    deps: [a.py, 3]\n",
         "item 2 of `deps` of stage `train` must be a string, not `3`", 4, 18),
    Case("inputs-string", "stages:\n  train:\n    cmd: x\n    inputs: datasets.raw\n",
         "`inputs` of stage `train` must be a list of references like `datasets.raw` or "
         "`stages.features.outs.table`, not the string `datasets.raw`", 4, 13),
    Case("outs-list", "stages:\n  train:\n    cmd: x\n    outs: [a, b]\n",
         "`outs` of stage `train` must be a mapping of output names to paths, not a list",
         4, 11),
    Case("env-value-int", "stages:\n  train:\n    cmd: x\n    env:\n      THREADS: 4\n",
         "`env.THREADS` of stage `train` must be a string, not `4`", 5, 16),
    Case("env-value-bool", "stages:\n  train:\n    cmd: x\n    env:\n      DEBUG: yes\n",
         "`env.DEBUG` of stage `train` must be a string, not `true`", 5, 14),
    Case("env-name", "stages:\n  train:\n    cmd: x\n    env:\n      MY-VAR: a\n",
         "environment variable name `MY-VAR` in stage `train` is not valid", 5, 7),
    Case("params-not-list", "stages:\n  train:\n    cmd: x\n    params: train.lr\n",
         "`params` of stage `train` must be a list of params keys like `train.lr`, not the "
         "string `train.lr`", 4, 13),
    Case("description-int", "stages:\n  train:\n    cmd: x\n    description: 5\n",
         "`description` of stage `train` must be a string, not `5`", 4, 18),
    Case("discover-imports-string",
         "stages:\n  train:\n    cmd: x\n    discover_imports: 'no'\n",
         "`discover_imports` of stage `train` must be true or false, not the string `no`",
         4, 23),
    Case("bad-kind", "stages:\n  train:\n    cmd: x\n    kind: trian\n",
         "unknown kind `trian` in stage `train`; did you mean `train`?", 4, 11),
    Case("kind-not-string", "stages:\n  train:\n    cmd: x\n    kind: 3\n",
         "`kind` of stage `train` must be one of check, transform, train, evaluate, not `3`",
         4, 11),
    # --- resources and durations -------------------------------------------
    Case("cpus-zero", "stages:\n  train:\n    cmd: x\n    resources:\n      cpus: 0\n",
         "`resources.cpus` of stage `train` must be at least 1, not `0`", 5, 13),
    Case("cpus-fraction", "stages:\n  train:\n    cmd: x\n    resources:\n      cpus: 1.5\n",
         "`resources.cpus` of stage `train` must be a whole number, at least 1, not `1.5`",
         5, 13),
    Case("gpus-negative", "stages:\n  train:\n    cmd: x\n    resources: {gpus: -1}\n",
         "`resources.gpus` of stage `train` must be at least 0, not `-1`", 4, 23),
    Case("resources-list", "stages:\n  train:\n    cmd: x\n    resources: [4]\n",
         "`resources` of stage `train` must be a mapping with `cpus`, `gpus` and `memory`, "
         "not a list", 4, 16),
    Case("memory-words", "stages:\n  train:\n    cmd: x\n    resources:\n      memory: lots\n",
         "`resources.memory` of stage `train` must be a size like `512MB` or `4GiB`, not the "
         "string `lots`", 5, 15),
    Case("memory-unit", "stages:\n  train:\n    cmd: x\n    resources:\n      memory: 4XB\n",
         "`resources.memory` of stage `train` must be a size like `512MB` or `4GiB`, not the "
         "string `4XB`", 5, 15),
    Case("memory-zero", "stages:\n  train:\n    cmd: x\n    resources:\n      memory: 0\n",
         "`resources.memory` of stage `train` must be a size greater than zero, not `0`",
         5, 15),
    Case("timeout-words", "stages:\n  train:\n    cmd: x\n    timeout: soon\n",
         "`timeout` of stage `train` must be a duration like `90s`, `10m`, `1h30m` or `2h`, "
         "not the string `soon`", 4, 14),
    Case("timeout-zero", "stages:\n  train:\n    cmd: x\n    timeout: 0s\n",
         "`timeout` of stage `train` must be a duration greater than zero, not the string "
         "`0s`", 4, 14),
    Case("timeout-bool", "stages:\n  train:\n    cmd: x\n    timeout: true\n",
         "`timeout` of stage `train` must be a duration like `90s`, `10m`, `1h30m` or `2h`, "
         "not `true`", 4, 14),
    # --- names ---------------------------------------------------------------
    Case("stage-name-digit", "stages:\n  1train:\n    cmd: x\n",
         "stage name `1train` is not valid", 2, 3),
    Case("stage-name-dot", "stages:\n  my.train:\n    cmd: x\n",
         "stage name `my.train` is not valid", 2, 3),
    Case("output-name", "stages:\n  train:\n    cmd: x\n    outs:\n      my.model: m.pkl\n",
         "output name `my.model` in stage `train` is not valid", 5, 7),
    Case("dataset-name", "datasets:\n  raw data: a.csv\n",
         "dataset name `raw data` is not valid", 2, 3),
    Case("dataset-int", "datasets:\n  raw: 5\n",
         "dataset `raw` must be a path or a mapping with `path:`, not `5`", 2, 8),
    Case("dataset-typo", "datasets:\n  raw:\n    paht: a.csv\n",
         "unknown key `paht` in dataset `raw`; did you mean `path`?", 3, 5),
    Case("model-unknown-key", """\
stages:
  t: {cmd: x, outs: {model: m.pkl}}
models:
  churn:
    train: t
    artifact: model
    gate: []
""", "unknown key `gate` in model `churn`; did you mean `gates`?", 7, 5),
    Case("model-missing-artifact", """\
stages:
  train: {cmd: x, outs: {model: m.pkl}}
models:
  churn:
    train: train
""", "model `churn` is missing the required key `artifact`", 4, 3),
    # --- references in inputs ------------------------------------------------
    Case("unknown-dataset-input", """\
datasets:
  raw: data/raw.csv
stages:
  train:
    cmd: x
    inputs: [datasets.rwa]
""", "input `datasets.rwa` of stage `train` names unknown dataset `rwa`; did you mean `raw`?",
         6, 14),
    Case("unknown-stage-input", """\
stages:
  features:
    cmd: x
    outs: {table: t.csv}
  train:
    cmd: x
    inputs:
      - stages.featurs.outs.table
""", "input `stages.featurs.outs.table` of stage `train` names unknown stage `featurs`; "
         "did you mean `features`?", 8, 9),
    Case("unknown-output-input", """\
stages:
  features:
    cmd: x
    outs: {table: t.csv}
  train:
    cmd: x
    inputs: [stages.features.outs.tabel]
""", "input `stages.features.outs.tabel` of stage `train`: stage `features` has no output "
         "`tabel`; did you mean `table`?", 7, 14),
    Case("malformed-input", """\
stages:
  features:
    cmd: x
    outs: {table: t.csv}
  train:
    cmd: x
    inputs: [features.table]
""", "input `features.table` of stage `train` is not a dataset or stage output", 7, 14),
    # --- ${...} in cmd and env ----------------------------------------------
    Case("unknown-namespace", """\
stages:
  train:
    cmd: python train.py --out ${out.model}
    outs: {model: m.pkl}
""", "unknown reference `${out.model}` in `cmd` of stage `train`; did you mean "
         "`${outs.model}`?", 3, 32),
    Case("undeclared-out", """\
stages:
  train:
    cmd: python train.py --out ${outs.modle}
    outs: {model: m.pkl}
""", "`${outs.modle}` in `cmd` of stage `train`: stage `train` has no output `modle`; "
         "did you mean `model`?", 3, 32),
    Case("missing-params-key", """\
stages:
  train:
    cmd: python train.py --lr ${params.train.lf}
""", "`${params.train.lf}` in `cmd` of stage `train`: `train.lf` is not in params.yaml; "
         "did you mean `train.lr`?", 3, 31, files=PARAMS),
    Case("unknown-tier-value", "stages:\n  train:\n    cmd: echo ${tier.foo}\n",
         "unknown reference `${tier.foo}` in `cmd` of stage `train`", 3, 15),
    Case("tier-typo", "stages:\n  train:\n    cmd: echo ${tier.sed}\n",
         "unknown reference `${tier.sed}` in `cmd` of stage `train`; did you mean "
         "`${tier.seed}`?", 3, 15),
    Case("unclosed-reference", "stages:\n  train:\n    cmd: echo ${tier.seed} ${outs.x\n",
         "unclosed `${` in `cmd` of stage `train`", 3, 28),
    Case("malformed-reference", "stages:\n  train:\n    cmd: 'echo ${outs x}'\n",
         "`${outs x}` is not a valid reference in `cmd` of stage `train`", 3, 16),
    Case("reference-in-block-cmd", """\
stages:
  train:
    cmd: |
      echo start
      run ${datasets.raw}
""", "`${datasets.raw}` in `cmd` of stage `train` names unknown dataset `raw`", 5, 11),
    Case("reference-in-env", """\
stages:
  train:
    cmd: x
    env:
      LR: ${params.train.lr}
""", "`${params.train.lr}` in `env.LR` of stage `train` needs a params file, but there is "
         "none", 5, 11),
    Case("stage-reference-shape", "stages:\n  a:\n    cmd: cat ${stages.b.table}\n",
         "`${stages.b.table}` in `cmd` of stage `a` is not a stage output", 3, 14),
    # --- params ---------------------------------------------------------------
    Case("params-key-without-file", """\
stages:
  train:
    cmd: x
    params: [train.lr]
""", "params key `train.lr` of stage `train` needs a params file, but there is none", 4, 14),
    Case("params-key-missing", """\
stages:
  train:
    cmd: x
    params: [seed, train.epoch]
""", "params key `train.epoch` of stage `train`: `train.epoch` is not in params.yaml; "
         "did you mean `train.epochs`?", 4, 20, files=PARAMS),
    Case("params-file-missing", "params: conf/params.yaml\nstages: {}\n",
         "params file `conf/params.yaml` not found", 1, 9),
    Case("params-file-list", "stages: {}\n",
         "params file `params.yaml` must hold a mapping of keys to values, not a list",
         1, 1, file="params.yaml", files={"params.yaml": "- 1\n- 2\n"}),
    Case("params-file-bad-yaml", "stages: {}\n",
         "params.yaml is not valid YAML: the `[` opened at line 2, column 7 is not closed "
         "with `]`", 3, 1, file="params.yaml",
         files={"params.yaml": "seed: 1\nlist: [1, 2\n"}),
    Case("params-file-duplicate", "stages: {}\n",
         "duplicate key `seed` (first defined at line 1)", 2, 1, file="params.yaml",
         files={"params.yaml": "seed: 1\nseed: 2\n"}),
    Case("params-json-bad", "params: p.json\nstages: {}\n",
         "params file `p.json` is not valid JSON: expecting value", 3, 1, file="p.json",
         files={"p.json": '{\n  "lr":\n}\n'}),
    Case("params-json-list", "params: p.json\n",
         "params file `p.json` must hold a mapping of keys to values, not a list", 1, 1,
         file="p.json", files={"p.json": "[1, 2]"}),
    # --- paths ---------------------------------------------------------------
    Case("absolute-path", "stages:\n  a:\n    cmd: x\n    deps: [/etc/passwd]\n",
         "dependency `/etc/passwd` of stage `a` is an absolute path", 4, 12),
    Case("windows-absolute-path", "datasets:\n  raw: 'C:\\data\\raw.csv'\n",
         "dataset `raw` (`C:\\data\\raw.csv`) is an absolute path", 2, 8),
    Case("path-escapes-repo", "stages:\n  a:\n    cmd: x\n    deps: [src/../../other]\n",
         "dependency `src/../../other` of stage `a` points outside the repository", 4, 12),
    Case("path-in-git", "stages:\n  a:\n    cmd: x\n    outs: {o: .git/hooks/x}\n",
         "output `o` (`.git/hooks/x`) of stage `a` is inside `.git/`, which git and sluice "
         "manage", 4, 15),
    Case("path-in-sluice", "datasets:\n  raw: ./.sluice/cache\n",
         "dataset `raw` (`./.sluice/cache`) is inside `.sluice/`, which git and sluice "
         "manage", 2, 8),
    Case("params-file-outside", "params: ../params.yaml\n",
         "params file `../params.yaml` points outside the repository", 1, 9),
    Case("empty-path", "stages:\n  a:\n    cmd: x\n    deps: ['']\n",
         "dependency of stage `a` is an empty path", 4, 12),
    Case("glob-output", "stages:\n  a:\n    cmd: x\n    outs: {o: 'out/*.csv'}\n",
         "output `o` of stage `a` is a glob (`out/*.csv`)", 4, 15),
    Case("root-output", "stages:\n  a:\n    cmd: x\n    outs: {o: .}\n",
         "output `o` of stage `a` is the repository root", 4, 15),
    # --- models --------------------------------------------------------------
    Case("model-unknown-train", """\
stages:
  train: {cmd: x, outs: {model: m.pkl}}
models:
  churn:
    train: trian
    artifact: model
""", "model `churn` names unknown train stage `trian`; did you mean `train`?", 5, 12),
    Case("model-unknown-evaluate", """\
stages:
  train: {cmd: x, outs: {model: m.pkl}}
models:
  churn: {train: train, artifact: model, evaluate: eval}
""", "model `churn` names unknown evaluate stage `eval`", 4, 52),
    Case("model-artifact-not-output", """\
stages:
  train: {cmd: x, outs: {model: m.pkl}}
models:
  churn:
    train: train
    artifact: modle
""", "artifact `modle` of model `churn` is not an output of stage `train`; did you mean "
         "`model`?", 6, 15),
    # --- the graph -------------------------------------------------------------
    Case("output-claimed-twice", """\
stages:
  a:
    cmd: x
    outs: {table: data/table.csv}
  b:
    cmd: x
    outs: {copy: ./data/table.csv}
""", "output `copy` of stage `b` writes `data/table.csv`, which is already output `table` "
         "of stage `a`", 7, 18),
    Case("nested-outputs", """\
stages:
  a:
    cmd: x
    outs: {folder: out}
  b:
    cmd: x
    outs: {file: out/b.csv}
""", "output `out/b.csv` of stage `b` lies inside output `out` of stage `a`", 7, 18),
    Case("reads-own-output-dep", """\
stages:
  a:
    cmd: x
    deps: [out/x.csv]
    outs: {folder: out}
""", "stage `a` lists `out/x.csv` as a dependency but also writes output `folder` at `out`",
         4, 12),
    Case("reads-own-output-glob", """\
stages:
  a:
    cmd: x
    deps: ['build/**/*.bin']
    outs: {folder: build/bins}
""", "stage `a` lists `build/**/*.bin` as a dependency but also writes output `folder` at "
         "`build/bins`", 4, 12),
    Case("reads-own-output-reference", """\
stages:
  a:
    cmd: cat ${stages.a.outs.o} > ${outs.o}
    outs: {o: a.txt}
""", "stage `a` reads its own output `o` through `${stages.a.outs.o}`", 3, 14),
    Case("reads-own-output-input", """\
stages:
  a:
    cmd: x
    inputs: [stages.a.outs.o]
    outs: {o: a.txt}
""", "stage `a` reads its own output `o` through input `stages.a.outs.o`", 4, 14),
    Case("cycle", """\
stages:
  a:
    cmd: x
    deps: [c.txt]
    outs: {o: a.txt}
  b:
    cmd: x
    inputs: [stages.a.outs.o]
    outs: {o: b.txt}
  c:
    cmd: cat ${stages.b.outs.o} > ${outs.o}
    outs: {o: c.txt}
""", "the stages form a cycle: a → b → c → a", 2, 3),
    Case("cycle-starts-at-first-stage", """\
stages:
  lonely:
    cmd: x
    deps: [y.txt]
  y:
    cmd: x
    deps: [x.txt]
    outs: {o: y.txt}
  x:
    cmd: x
    deps: [y.txt]
    outs: {o: x.txt}
""", "the stages form a cycle: y → x → y", 5, 3),
]


def _ids(case: Case) -> str:
    return case.id


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_broken_config(tmp_path: Path, case: Case) -> None:
    found = problems(tmp_path, case.yaml, case.files)
    assert [e.message for e in found] == [case.message]
    error = found[0]
    assert error.location is not None
    assert (error.location.file, error.location.line, error.location.column) == \
        (case.file, case.line, case.column)
    assert error.hint, "every config error says how to fix it"
    assert f"({case.file}:{case.line}:{case.column})" in error.render()


def test_several_schema_errors_are_reported_together_in_file_order(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
stages:
  b:
    cmd: x
    deps_on: []
  a:
    cmd: 1
    kind: chek
""")
    assert [(e.message, e.location.line if e.location else None) for e in found] == [
        ("unknown key `deps_on` in stage `b`; did you mean `deps`?", 4),
        ("`cmd` of stage `a` must be a shell command string, not `1`", 6),
        ("unknown kind `chek` in stage `a`; did you mean `check`?", 7),
    ]


def test_several_reference_errors_are_reported_together_in_file_order(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
stages:
  a:
    cmd: echo ${outs.nope}
    deps: [/abs]
    inputs: [datasets.raw]
    params: [lr]
models:
  m: {train: a, artifact: x}
""")
    assert [(e.message, str(e.location)) for e in found] == [
        ("`${outs.nope}` in `cmd` of stage `a`: stage `a` has no output `nope`",
         "sluice.yaml:3:15"),
        ("dependency `/abs` of stage `a` is an absolute path", "sluice.yaml:4:12"),
        ("input `datasets.raw` of stage `a` names unknown dataset `raw`", "sluice.yaml:5:14"),
        ("params key `lr` of stage `a` needs a params file, but there is none",
         "sluice.yaml:6:14"),
        ("artifact `x` of model `m` is not an output of stage `a`", "sluice.yaml:8:27"),
    ]


def test_several_graph_errors_are_reported_together(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
stages:
  a: {cmd: x, outs: {o: out.csv, d: dir}}
  b: {cmd: x, outs: {o: out.csv, f: dir/f.csv}}
""")
    assert [e.message for e in found] == [
        "output `o` of stage `b` writes `out.csv`, which is already output `o` of stage `a`",
        "output `dir/f.csv` of stage `b` lies inside output `dir` of stage `a`",
    ]


def test_rendered_errors_list_message_location_and_hint(tmp_path: Path) -> None:
    write_project(tmp_path, "stages:\n  train:\n    cmd: x\n    deps_on: [a]\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        "unknown key `deps_on` in stage `train`; did you mean `deps`? (sluice.yaml:4:5)\n"
        "  hint: valid keys: cmd, deps, description, discover_imports, entry_point, env, "
        "executor, flow, inputs, kind, outs, parameters, params, project, resources, timeout, "
        "uses")


@pytest.mark.parametrize(("yaml", "hint"), [
    ("stages:\n  a:\n    cmd: x\n    kind: chek\n",
     "`kind` is one of check, transform, train, evaluate (check = a cheap gate that runs "
     "first, transform = a data step)"),
    ("stages:\n  a: {cmd: 5}\n", 'put it in quotes: `cmd: "5"`'),
    ("stages:\n  a: {cmd: x, env: {N: 4}}\n", 'put it in quotes: `N: "4"`'),
    ("stages:\n  a: {cmd: x, deps: {a: b}}\n", "write it like `deps: [src/train.py, data/]`"),
    ("stages:\n  a: {cmd: x, params: lr}\n",
     "write it like `params: [train.lr, train.epochs]`"),
    ("stages:\n  a: {cmd: x, timeout: soon}\n", "write it like `timeout: 30m`"),
    ("stages:\n  a: {cmd: x, resources: {gpus: -1}}\n",
     "write `gpus: 0` (or leave it out) for a stage without GPUs"),
    ("stages:\n  a: {deps: []}\n",
     "add `cmd:` (a shell command string), e.g. `cmd: python train.py --out ${outs.model}`, "
     "or `uses: mlflow-project` / `uses: metaflow` (docs/mlflow-projects.md)"),
    ("stages:\n  a: echo hi\n", "put the command under `cmd:`, e.g. `a: {cmd: echo hi}`"),
    ("stages:\n  a:\n    cmd: x\n    outs: {o: x}\n  b:\n    cmd: x\n"
     "    inputs: [a.o]\n",
     "did you mean `stages.a.outs.o`? (write `datasets.NAME` or `stages.STAGE.outs.OUTPUT`)"),
    ("datasets: {raw: r.csv}\nstages:\n  b:\n    cmd: x\n    inputs: [raw]\n",
     "did you mean `datasets.raw`? (write `datasets.NAME` or `stages.STAGE.outs.OUTPUT`)"),
    ("datasets: {raw: r.csv}\nstages:\n  b:\n    cmd: x\n    inputs: ['${datasets.raw}']\n",
     "did you mean `datasets.raw`? (write `datasets.NAME` or `stages.STAGE.outs.OUTPUT`)"),
    ("stages:\n  a: {cmd: x, outs: {o: x}}\n  b: {cmd: 'cat ${stages.a.outs.p}'}\n",
     "the outputs of `a` are: o"),
    ("stages:\n  a: {cmd: 'echo ${outs.x'}\n",
     "close it with `}`, or write `$${` for a literal `${`"),
    ("stages:\n  a: {cmd: x, params: [lr]}\n",
     "create params.yaml, or set the top-level `params:` to the path of your params file"),
    ("stages:\n  a: {cmd: x, outs: {o: /tmp/x}}\n",
     "write it relative to the repository root so the project works in every clone"),
    ("stages:\n  a: {cmd: x, deps: [b.txt], outs: {o: a.txt}}\n"
     "  b: {cmd: x, deps: [a.txt], outs: {o: b.txt}}\n",
     "`x → y` means y reads an output of x; remove one of these dependencies to break the "
     "cycle"),
])
def test_hints_say_how_to_fix(tmp_path: Path, yaml: str, hint: str) -> None:
    found = problems(tmp_path, yaml)
    assert [e.hint for e in found] == [hint]


def test_missing_sluice_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^sluice.yaml not found") as info:
        load_config(tmp_path)
    assert info.value.hint == "create it, or run `sluice init`"


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "sluice.yaml").write_bytes(b"stages: {}\n# \xff\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.message == "sluice.yaml is not UTF-8 text (byte 13)"
    assert str(info.value.location) == "sluice.yaml"


def test_unknown_keys_and_dangling_references_come_in_one_round(tmp_path: Path) -> None:
    # Structure errors used to stop the load before references were checked: a user
    # fixed the unknown key, ran again, and only then heard of the dangling input.
    write_project(tmp_path, """\
stages:
  prepare:
    cmd: x
    retries: 3
    outs: {table: t.csv}
  train:
    cmd: y
    inputs: [stages.prepair.outs.table]
""")
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    assert [(e.message.split(";")[0], e.location.line if e.location else None)
            for e in info.value.errors] == [
        ("unknown key `retries` in stage `prepare`", 4),
        ("input `stages.prepair.outs.table` of stage `train` names unknown stage `prepair`", 8),
    ]


def test_other_structure_errors_still_stop_before_references(tmp_path: Path) -> None:
    # A wrong type could make a reference look dangling; only unknown keys are set aside.
    write_project(tmp_path, "stages:\n  a: {cmd: x, timeout: soon}\n"
                            "  b: {cmd: y, inputs: [stages.nope.outs.x]}\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    assert [e.location.line if e.location else None for e in info.value.errors] == [2]
