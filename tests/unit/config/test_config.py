"""Loading valid sluice.yaml files: every key of the schema, resolved and normalised."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.config.base import DEFAULT_PARAMS_FILE, InputRef, is_glob, lookup_param, normalise_path
from sluice.config.load import load_config
from sluice.config.schema import DatasetSpec, ModelSpec, Resources
from sluice.config.schema_types import parse_duration, parse_size
from sluice.errors import ConfigError, Location
from sluice.util.suggest import did_you_mean
from tests.unit._util import load, write_project

FULL = """\
version: 1
params: conf/params.yaml
remote: ../shared-store
datasets:
  raw: data/raw.csv
  labels:
    path: ./data/labels/
    description: hand labels
stages:
  lint:
    cmd: ruff check src
    kind: check
    description: style gate
    deps: [src/]
  features:
    cmd: python -m feats ${datasets.raw} --out ${outs.table}
    deps: ["src/feats/*.py", pyproject.toml]
    outs:
      table: build/features.parquet
    params: [features.window]
  train:
    cmd: python train.py --lr ${params.train.lr} --frac ${tier.fraction}
    kind: train
    inputs: [stages.features.outs.table, datasets.labels]
    outs:
      model: build/model.pkl
      report: build/train-report.json
    params: [train.lr, train.epochs]
    env:
      LOG_LEVEL: debug
      SEED_TEXT: "seed=${tier.seed}"
    resources:
      cpus: 4
      gpus: 1
      memory: 16GiB
    timeout: 1h30m
    discover_imports: false
  evaluate:
    cmd: python eval.py ${stages.train.outs.model} ${outs.predictions}
    kind: evaluate
    outs: {predictions: build/predictions.csv}
models:
  churn:
    train: train
    evaluate: evaluate
    artifact: model
    description: churn classifier
"""
PARAMS = "features:\n  window: 7\ntrain:\n  lr: 0.01\n  epochs: 5\nunused: 1\n"


def test_every_key_of_the_schema(tmp_path: Path) -> None:
    cfg = load(tmp_path, FULL, {"conf/params.yaml": PARAMS})
    assert cfg.root == tmp_path
    assert cfg.spec.version == 1
    assert cfg.params_file == "conf/params.yaml"
    assert cfg.remote == "../shared-store"
    assert cfg.params["train"] == {"lr": 0.01, "epochs": 5}
    assert cfg.datasets == {
        "raw": DatasetSpec(path="data/raw.csv"),
        "labels": DatasetSpec(path="./data/labels/", description="hand labels"),
    }
    assert list(cfg.stages) == ["lint", "features", "train", "evaluate"]

    lint = cfg.stages["lint"]
    assert (lint.kind, lint.cmd, lint.spec.description) == ("check", "ruff check src",
                                                            "style gate")
    assert lint.deps == ("src",)
    assert lint.outs == {} and lint.inputs == ()

    features = cfg.stages["features"]
    assert features.kind == "transform"  # the default
    assert features.deps == ("src/feats/*.py", "pyproject.toml")
    assert features.outs == {"table": "build/features.parquet"}
    assert features.spec.params == ["features.window"]
    # ${datasets.raw} in cmd makes the dataset an input
    assert features.inputs == (InputRef("datasets.raw", "data/raw.csv", None),)

    train = cfg.stages["train"]
    assert train.inputs == (
        InputRef("stages.features.outs.table", "build/features.parquet", "features"),
        InputRef("datasets.labels", "data/labels", None),
    )
    assert train.outs == {"model": "build/model.pkl", "report": "build/train-report.json"}
    assert train.spec.env == {"LOG_LEVEL": "debug", "SEED_TEXT": "seed=${tier.seed}"}
    assert train.spec.resources == Resources(cpus=4, gpus=1, memory=16 * 1024**3)
    assert train.spec.timeout == 5400.0
    assert train.spec.discover_imports is False

    evaluate = cfg.stages["evaluate"]
    assert evaluate.inputs == (InputRef("stages.train.outs.model", "build/model.pkl", "train"),)
    assert cfg.models == {"churn": ModelSpec(train="train", evaluate="evaluate",
                                             artifact="model",
                                             description="churn classifier")}


def test_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, "stages:\n  a:\n    cmd: echo hi\n")
    spec = cfg.stages["a"].spec
    assert spec.kind == "transform"
    assert spec.description is None
    assert spec.deps == spec.inputs == spec.params == []
    assert spec.outs == spec.env == {}
    assert spec.resources == Resources(cpus=1, gpus=0, memory=None)
    assert spec.timeout is None
    assert spec.discover_imports is True
    assert cfg.params_file is None and cfg.params == {}
    assert cfg.datasets == {} and cfg.models == {} and cfg.remote is None


def test_no_stages_is_valid(tmp_path: Path) -> None:
    cfg = load(tmp_path, "version: 1\n")
    assert cfg.stages == {}


def test_dataset_shorthand_equals_long_form(tmp_path: Path) -> None:
    short = load(tmp_path / "a", "datasets:\n  raw: data/raw.csv\n")
    long = load(tmp_path / "b", "datasets:\n  raw:\n    path: data/raw.csv\n")
    assert short.datasets == long.datasets == {"raw": DatasetSpec(path="data/raw.csv")}


def test_default_params_yaml_is_picked_up(tmp_path: Path) -> None:
    cfg = load(tmp_path, "stages:\n  a:\n    cmd: echo ${params.lr}\n    params: [lr]\n",
               {"params.yaml": "lr: 0.5\n"})
    assert cfg.params_file == DEFAULT_PARAMS_FILE
    assert cfg.params == {"lr": 0.5}


def test_empty_params_file_is_an_empty_mapping(tmp_path: Path) -> None:
    cfg = load(tmp_path, "stages: {}\n", {"params.yaml": "# nothing yet\n"})
    assert cfg.params_file == "params.yaml" and cfg.params == {}


def test_explicit_params_file_wins_over_params_yaml(tmp_path: Path) -> None:
    cfg = load(tmp_path, "params: other.yaml\n",
               {"params.yaml": "a: 1\n", "other.yaml": "b: 2\n"})
    assert cfg.params_file == "other.yaml" and cfg.params == {"b": 2}


def test_params_file_in_json(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
params: conf/params.json
stages:
  train:
    cmd: python train.py --layers ${params.model.layers}
    params: [model.dropout, model]
""", {"conf/params.json": '{"model": {"layers": [64, 32], "dropout": 0.1}}'})
    assert cfg.params_file == "conf/params.json"
    assert cfg.params == {"model": {"layers": [64, 32], "dropout": 0.1}}


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
stages:
  prepare: &defaults
    cmd: python prepare.py
    resources: {cpus: 8, gpus: 1}
    timeout: 2h
  train:
    <<: *defaults
    cmd: python train.py
    timeout: 3h
""")
    spec = cfg.stages["train"].spec
    assert spec.cmd == "python train.py"  # explicit keys override merged ones
    assert spec.resources == Resources(cpus=8, gpus=1)
    assert spec.timeout == 3 * 3600
    # a merged value is located where it is written
    assert cfg.locate("stages", "train", "resources") == cfg.locate("stages", "prepare",
                                                                    "resources")
    assert cfg.locate("stages", "train", "timeout").line == 9


def test_anchor_shared_between_stages(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
stages:
  a:
    cmd: x
    resources: &big {cpus: 8, memory: 2GB}
  b:
    cmd: y
    resources: *big
""")
    assert cfg.stages["a"].spec.resources == cfg.stages["b"].spec.resources == \
        Resources(cpus=8, memory=2 * 1000**3)


def test_paths_are_normalised(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
datasets:
  raw: ./data//raw.csv
stages:
  a:
    cmd: x
    deps: [src/./a/../b.py, 'data\\\\x.csv']
    outs: {o: out/sub/}
""")
    stage = cfg.stages["a"]
    assert stage.deps == ("src/b.py", "data/x.csv")
    assert stage.outs == {"o": "out/sub"}


def test_cmd_and_env_references_become_inputs_once(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
datasets: {raw: raw.csv}
stages:
  a: {cmd: x, outs: {o: a.txt}}
  b:
    cmd: cat ${stages.a.outs.o} ${stages.a.outs.o} ${datasets.raw}
    inputs: [stages.a.outs.o]
    env: {RAW: "${datasets.raw}", A: "${stages.a.outs.o}"}
""")
    assert cfg.stages["b"].inputs == (
        InputRef("stages.a.outs.o", "a.txt", "a"),
        InputRef("datasets.raw", "raw.csv", None),
    )


def test_escaped_reference_is_not_checked(tmp_path: Path) -> None:
    cfg = load(tmp_path, "stages:\n  a:\n    cmd: echo $${HOME} $${nonsense here}\n")
    assert cfg.stages["a"].inputs == ()


def test_locations_are_kept(tmp_path: Path) -> None:
    cfg = load(tmp_path, "stages:\n  train:\n    cmd: echo ${tier.seed}\n")
    assert cfg.locate("stages", "train", "cmd") == Location("sluice.yaml", 3, 10)
    assert cfg.locate("stages", "train", key=True) == Location("sluice.yaml", 2, 3)
    assert cfg.source.locate_offset(("stages", "train", "cmd"), 5) == \
        Location("sluice.yaml", 3, 15)


@pytest.mark.parametrize(("text", "seconds"), [
    (90, 90.0), (1.5, 1.5), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0),
    ("1h30m", 5400.0), ("1h 30m 15s", 5415.0), ("0.5h", 1800.0), ("45 sec", 45.0),
    ("3 minutes", 180.0), ("1 hour", 3600.0), ("7d", 604800.0), ("1 day 2h", 93600.0),
])
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10 fortnights", "1w", "-5s", 0, -1, True, None, [1]])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [
    (1024, 1024), ("1024", 1024), ("512MB", 512 * 1000**2), ("4GiB", 4 * 1024**3),
    ("1.5 GB", 1_500_000_000), ("2k", 2000), ("3kib", 3072), ("1TB", 10**12),
    ("1tib", 1024**4), ("7b", 7),
])
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "4XB", "-1GB", "", 0, True, 1.5, None])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_lookup_param() -> None:
    params = {"train": {"lr": 0.1, "opt": {"name": "adam"}}, "flag": False, "none": None}
    assert lookup_param(params, "train.lr") == (True, 0.1)
    assert lookup_param(params, "train.opt") == (True, {"name": "adam"})
    assert lookup_param(params, "train.opt.name") == (True, "adam")
    assert lookup_param(params, "flag") == (True, False)
    assert lookup_param(params, "none") == (True, None)
    assert lookup_param(params, "train.lf") == (False, None)
    assert lookup_param(params, "train.lr.x") == (False, None)


def test_did_you_mean_and_is_glob() -> None:
    assert did_you_mean("trian", ["train", "evaluate"]) == "; did you mean `train`?"
    assert did_you_mean("zzz", ["train"]) == ""
    assert all(is_glob(p) for p in ("a/*.csv", "a?", "[ab].txt", "**/x"))
    assert not is_glob("data/raw.csv")


@pytest.mark.parametrize(("raw", "norm"), [
    ("a/b", "a/b"), ("./a/b/", "a/b"), ("a//b", "a/b"), ("a/../b", "b"), (" a ", "a"),
    ("a\\b", "a/b"), ("x:y.csv", "x:y.csv"), (".gitignore", ".gitignore"),
    (".sluice-notes/x", ".sluice-notes/x"), (".", "."),
])
def test_normalise_path(raw: str, norm: str) -> None:
    assert normalise_path(raw, "dependency {path}", Location("f")) == norm


@pytest.mark.parametrize(("raw", "message"), [
    ("/a", "dependency `/a` is an absolute path"),
    ("\\\\server\\share", "dependency `\\\\server\\share` is an absolute path"),
    ("C:/data", "dependency `C:/data` is an absolute path"),
    ("..", "dependency `..` points outside the repository"),
    ("a/../../b", "dependency `a/../../b` points outside the repository"),
    (".git", "dependency `.git` is inside `.git/`, which git and sluice manage"),
    (".sluice/x", "dependency `.sluice/x` is inside `.sluice/`, which git and sluice manage"),
    ("  ", "dependency is an empty path"),
])
def test_normalise_path_rejects(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalise_path(raw, "dependency {path}", Location("f", 1, 2))
    assert info.value.message == message
    assert info.value.location == Location("f", 1, 2)


def test_config_is_loaded_from_root_only(tmp_path: Path) -> None:
    write_project(tmp_path, "stages: {a: {cmd: x}}\n")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "sub")


def test_a_store_url_no_backend_serves_is_refused_at_load(tmp_path: Path) -> None:
    from tests.unit._util import problems

    found = problems(tmp_path, "remote: ftp2://host/x\nstorage: {cache: 's3://b/p'}\n"
                               "stages:\n  a: {cmd: 'true'}\n")
    assert [(p.message, p.location.line if p.location else None) for p in found] == [
        ("no store backend for `ftp2://` URLs", 1)]


def test_dates_in_params_are_the_text_written(tmp_path: Path) -> None:
    # Run records and fingerprints are JSON; a date object made `sluice run` crash.
    cfg = load(tmp_path, "stages: {}\n",
               {"params.yaml": "d: 2024-01-31\nt: 2024-01-31 10:00:00\nl: [2024-02-01]\n"})
    assert cfg.params == {"d": "2024-01-31", "t": "2024-01-31 10:00:00", "l": ["2024-02-01"]}


@pytest.mark.parametrize(("config", "message", "where"), [
    ("stages:\n  a:\n    cmd: x\n    outs: {m: 'models/${params.name}.pkl'}\n",
     "output `m` (`models/${params.name}.pkl`) of stage `a` contains `${`, but sluice does "
     "not interpolate paths", (4, 23)),
    ("stages:\n  a:\n    cmd: x\n    deps: ['data/${tier.name}.csv']\n",
     "dependency `data/${tier.name}.csv` of stage `a` contains `${`, but sluice does not "
     "interpolate paths", (4, 18)),
    ("datasets:\n  raw: data/${x}.csv\n",
     "dataset `raw` (`data/${x}.csv`) contains `${`, but sluice does not interpolate paths",
     (2, 8)),  # the shorthand: where the value starts
    ("stages:\n  t: {cmd: x, outs: {m: m.pkl}}\n  e: {cmd: x, outs: {p: p.csv}}\n"
     "models:\n  c:\n    train: t\n    evaluate: e\n    artifact: m\n"
     "    baseline: {alias: '${tier.name}'}\n",
     "alias `${tier.name}` (`models.c.baseline.alias`) contains `${`, but sluice does not "
     "interpolate alias names", (9, 24)),
    ("tiers:\n  merge:\n    promote: staging-${tier.name}\n",
     "alias `staging-${tier.name}` (`tiers.merge.promote`) contains `${`, but sluice does "
     "not interpolate alias names", (3, 22)),
    ("promotion:\n  production: {after: '${x}'}\n",
     "alias `${x}` (`promotion.production.after`) contains `${`, but sluice does not "
     "interpolate alias names", (2, 24)),
])
def test_a_reference_where_nothing_is_interpolated_is_an_error(
        tmp_path: Path, config: str, message: str, where: tuple[int, int]) -> None:
    from tests.unit._util import problems

    found = problems(tmp_path, config)
    assert [(p.message, p.location) for p in found] == [
        (message, Location("sluice.yaml", *where))]
    assert found[0].hint is not None and "`cmd` and `env`" in found[0].hint


def test_a_params_file_goes_through_the_bounded_loader(tmp_path: Path) -> None:
    bomb = "a0: &a0 [" + ", ".join(["x"] * 9) + "]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "stages: {}\n", {"params.yaml": bomb})
    assert "aliases (`*name`) expand this value" in info.value.message
    assert info.value.location == Location("params.yaml", 6, 5)
