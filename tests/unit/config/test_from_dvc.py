"""Unit: dvc.yaml (foreach, matrix, vars, wdir, params by key and by file) as sluice stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.config.from_dvc import convert_dvc_yaml
from sluice.config.from_dvc_render import render_sluice_yaml
from sluice.errors import ConfigError
from sluice.util.yamlsource import parse_yaml

DVC_YAML = """\
vars:
  - models: [small, large]
  - config.yaml:data_dir
stages:
  train:
    foreach: ${models}
    do:
      cmd: python train.py --size ${item} --lr ${train.lr} --data ${data_dir}
      deps: [train.py, "${data_dir}/raw.csv"]
      params: [train.lr]
      outs: ["models/${item}.pkl"]
  sweep:
    matrix:
      depth: [2, 4]
      loss: [l1, l2]
    cmd: python sweep.py ${item.depth} ${item.loss}
    outs: ["sweep/${item.depth}-${item.loss}.json"]
  per_region:
    foreach:
      eu: {rows: 10}
      us: {rows: 20}
    do:
      cmd: python region.py ${key} ${item.rows}
  report:
    wdir: reports
    cmd: [python make.py, echo done]
    deps: [make.py]
    params:
      - extra.yaml:
        - colour
      - ../params.yaml: [train]
      - threshold
    outs:
      - out.html:
          persist: true
    metrics: [score.json]
    plots:
      - roc.csv: {x: fpr, y: tpr}
    frozen: true
    always_changed: true
  broken:
    cmd: echo ${nowhere.key}
  indexed:
    cmd: echo ${train.layers[1]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text(
        "train:\n  lr: 0.1\n  layers: [8, 4]\nthreshold: 0.5\n")
    (tmp_path / "config.yaml").write_text("data_dir: data\nother: 1\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/params.yaml").write_text("threshold: 1\n")
    return tmp_path


def _line(text: str) -> int:
    return DVC_YAML.splitlines().index(text) + 1


def test_foreach_matrix_vars_and_params(project: Path) -> None:
    done = convert_dvc_yaml(project)
    stages = {s.name: s for s in done.stages}
    assert list(stages) == ["train-small", "train-large", "sweep-2-l1", "sweep-2-l2",
                            "sweep-4-l1", "sweep-4-l2", "per_region-eu", "per_region-us",
                            "report", "broken", "indexed"]
    small = stages["train-small"]
    # A params key stays a reference (its value is fingerprinted); vars are written in.
    assert small.cmd == "python train.py --size small --lr ${params.train.lr} --data data"
    assert small.deps == ["train.py", "data/raw.csv"] and small.params == ["train.lr"]
    assert small.outs == {"small": "models/small.pkl"} and small.dvc_name == "train@small"
    assert stages["sweep-4-l2"].cmd == "python sweep.py 4 l2"
    assert stages["per_region-us"].cmd == "python region.py us 20"
    # An index sluice's `${params…}` cannot express: the value, its key still fingerprinted.
    assert (stages["indexed"].cmd, stages["indexed"].params) == ("echo 4", ["train.layers"])


def test_wdir_params_by_file_and_notes(project: Path) -> None:
    done = convert_dvc_yaml(project)
    report = next(s for s in done.stages if s.name == "report")
    assert report.cmd == "cd reports && python make.py && echo done"
    # ../params.yaml is the project's params file: by key. The others become deps.
    assert report.deps == ["reports/make.py", "reports/extra.yaml", "reports/params.yaml"]
    assert report.params == ["train"]
    assert report.outs == {"out": "reports/out.html", "score": "reports/score.json",
                           "roc": "reports/roc.csv"}
    notes = {(n.location.line, n.message.split(";")[0]) for n in done.notes}
    assert (_line("    frozen: true"), "stage `report` is frozen") in notes
    assert (_line("    always_changed: true"),
            "stage `report` is `always_changed`") in notes
    assert any("persist: true" in m for _, m in notes)
    assert any("`${nowhere.key}` names nothing" in n.message
               and n.location.line == _line("    cmd: echo ${nowhere.key}") for n in done.notes)
    broken = next(s for s in done.stages if s.name == "broken")
    assert broken.cmd == "echo $${nowhere.key}"  # the shell never sees an empty variable


def test_rendered_yaml_reads_back(project: Path) -> None:
    done = convert_dvc_yaml(project)
    text = render_sluice_yaml(done)
    data = parse_yaml(text, "sluice.yaml").data
    assert data["stages"]["train-small"]["cmd"] == done.stages[0].cmd
    assert data["stages"]["report"]["deps"][0] == "reports/make.py"
    assert f"# NOTE dvc.yaml:{_line('    frozen: true')}:" in text


def test_no_dvc_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no dvc\.yaml"):
        convert_dvc_yaml(tmp_path)
