"""The config cache: an unchanged sluice.yaml is rebuilt without validation, and
any change to it or to the params file is validated again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sluice.config.cache import View, cache_file
from sluice.config.load import load_config

CONFIG = """\
params: params.yaml
datasets:
  raw: {path: data/raw.csv, sample: {key: id}}
stages:
  zprep:
    cmd: cp ${datasets.raw} ${outs.table}
    inputs: [datasets.raw]
    outs: {table: build/table.csv}
    resources: {cpus: 2, memory: 1GB}
    timeout: 90s
  train:
    kind: train
    cmd: train ${params.train.lr} ${stages.zprep.outs.table}
    outs: {model: build/model.bin}
models:
  m: {train: train, artifact: model}
tiers:
  pr: {trigger: pull_request, fraction: 0.02, budget: {wall: 10m}, select: [m]}
prices: {cpu_hour: 0.05, gpu_hour: {default: 2.0}}
budgets:
  weekly: {usd: 10}
"""


def _write(root: Path, config: str = CONFIG, params: str = "train: {lr: 0.1}\n") -> None:
    (root / "sluice.yaml").write_text(config)
    (root / "params.yaml").write_text(params)


def test_second_load_comes_from_the_cache_and_matches(tmp_path: Path) -> None:
    _write(tmp_path)
    fresh = load_config(tmp_path)
    assert cache_file(tmp_path, (tmp_path / "sluice.yaml").read_bytes()).exists()
    cached = load_config(tmp_path)
    assert isinstance(cached.spec, View)
    assert cached.spec == fresh.spec
    assert list(cached.stages) == list(fresh.stages) == ["zprep", "train"]  # file order
    assert cached.stages["zprep"].spec.resources.cpus == 2
    assert cached.stages["zprep"].spec.timeout == 90.0
    assert cached.stages["train"].inputs == fresh.stages["train"].inputs
    assert cached.spec.tiers["pr"].budget.wall == 600.0
    assert cached.spec.tiers["pr"].select == ["m"]
    assert cached.spec.prices.gpu_hour == {"default": 2.0}
    assert cached.datasets["raw"].sample.key == "id"
    assert cached.params == fresh.params
    # Locations still work: the YAML is parsed again on demand.
    assert str(cached.locate("stages", "train", "cmd")) == "sluice.yaml:13:10"


def test_any_change_is_validated_again(tmp_path: Path) -> None:
    _write(tmp_path)
    load_config(tmp_path)
    _write(tmp_path, params="train: {lr: 0.2}\n")
    assert load_config(tmp_path).params == {"train": {"lr": 0.2}}
    _write(tmp_path, CONFIG.replace("cpus: 2", "cpus: 3"))
    assert load_config(tmp_path).stages["zprep"].spec.resources.cpus == 3
    _write(tmp_path, CONFIG.replace("cpus: 2", "cpus: 0"))
    try:
        load_config(tmp_path)
    except Exception as exc:  # the broken file is reported, not served from the cache
        assert "must be at least 1" in str(exc)
    else:
        raise AssertionError("a broken config was served from the cache")


def test_damaged_cache_is_ignored(tmp_path: Path) -> None:
    _write(tmp_path)
    load_config(tmp_path)
    cache_file(tmp_path, (tmp_path / "sluice.yaml").read_bytes()).write_text("{not json")
    assert load_config(tmp_path).stages["zprep"].spec.resources.cpus == 2
    cache_file(tmp_path, (tmp_path / "sluice.yaml").read_bytes()).write_text('{"code": 1}')
    assert load_config(tmp_path).stages["zprep"].spec.resources.cpus == 2


def test_cached_load_does_not_import_pydantic(tmp_path: Path) -> None:
    _write(tmp_path)
    load_config(tmp_path)
    code = ("import sys; from pathlib import Path; from sluice.config.load import load_config; "
            f"load_config(Path({str(tmp_path)!r})); print('pydantic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
