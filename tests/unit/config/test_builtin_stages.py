"""The validation checks sluice adds for datasets with a schema (sluice.config.builtin_stages)."""

from __future__ import annotations

from pathlib import Path

from sluice.config.builtin_stages import consumed_datasets, dataset_of, stage_name
from sluice.config.cache import View, cache_file
from sluice.config.load import load_config
from sluice.pipeline.plan import select_stages
from sluice.workspace.graph import build_graph
from sluice.workspace.project import Project
from tests.unit._util import load_graph, problems, write_project

CONFIG = """\
datasets:
  raw: {path: data/raw.csv, schema: schemas/raw.yaml}
  regions: data/regions.csv
stages:
  unit: {cmd: "true", kind: check}
  features:
    cmd: cat data/raw.csv data/regions.csv > f.csv
    inputs: [datasets.raw, datasets.regions]
    outs: {f: f.csv}
  train:
    kind: train
    cmd: cp f.csv model
    inputs: [stages.features.outs.f]
    outs: {model: model}
  other:
    cmd: "true"
    deps: [data/regions.csv]
"""
FILES = {"data/raw.csv": "a\n1\n", "data/regions.csv": "r\nx\n",
         "schemas/raw.yaml": "version: 1\n"}


def test_a_dataset_with_a_schema_gets_a_check_stage_first(tmp_path: Path) -> None:
    config, graph = load_graph(tmp_path, CONFIG, FILES)
    stage = config.stages["validate-raw"]
    assert stage.kind == "check"
    assert stage.deps == ("data/raw.csv", "schemas/raw.yaml")
    assert stage.cmd == '"$SLUICE_PYTHON" -m sluice data validate raw'
    assert stage.spec.env == {"SLUICE_DATA_FORMAT": "auto"}  # a `format:` change reruns it
    assert "validate-regions" not in config.stages  # no schema, no check
    assert graph.order[0] == "validate-raw"


def test_the_check_survives_the_config_cache(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG, FILES)
    fresh = load_config(tmp_path)
    assert cache_file(tmp_path, fresh.raw).is_file()
    cached = load_config(tmp_path)
    assert isinstance(cached.spec, View)
    assert list(cached.stages) == list(fresh.stages)
    assert cached.stages["validate-raw"].spec == fresh.stages["validate-raw"].spec
    assert cached.stages["validate-raw"].deps == fresh.stages["validate-raw"].deps


def test_selecting_a_consumer_selects_the_check_of_what_it_reads(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG, FILES)
    config = load_config(tmp_path)
    project = Project(tmp_path, config, build_graph(config))
    assert select_stages(project, ["train"]) == ["validate-raw", "features", "train"]
    assert select_stages(project, ["other"]) == ["other"]
    assert select_stages(project, ["validate-raw"]) == ["validate-raw"]


def test_a_name_clash_is_reported(tmp_path: Path) -> None:
    clash = CONFIG + "  validate-raw: {cmd: 'true'}\n"
    found = problems(tmp_path, clash, {k: v for k, v in FILES.items()
                                       if not k.startswith("schemas")})
    messages = [p.message for p in found]
    assert "stage `validate-raw` clashes with the validation stage sluice adds for dataset " \
           "`raw`" in messages
    clash_error = next(p for p in found if "clashes" in p.message)
    assert clash_error.location is not None and clash_error.location.line == 18
    # A schema file not written yet is no config error (`sluice data infer` writes it).
    write_project(tmp_path / "b", CONFIG, {k: v for k, v in FILES.items()
                                           if not k.startswith("schemas")})
    assert "validate-raw" in load_config(tmp_path / "b").stages


def test_names_and_consumers() -> None:
    assert dataset_of(stage_name("raw")) == "raw" and dataset_of("train") is None
    paths = {"raw": "data/raw", "one": "data/one.csv"}
    assert consumed_datasets(["data/raw/part-1.parquet", "src/x.py"], [], paths) == ["raw"]
    assert consumed_datasets(["data"], [], paths) == ["raw", "one"]
    assert consumed_datasets([], [("datasets.one", "data/one.csv")], paths) == ["one"]
