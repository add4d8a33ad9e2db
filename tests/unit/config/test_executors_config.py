"""`executors:` in sluice.yaml: names resolved per stage and tier, mistakes located."""

from __future__ import annotations

from pathlib import Path

from tests.unit._util import load, problems

CONFIG = """\
executors:
  gpu:
    type: ray
    address: http://ray-head:8265
    setup: pip install -r requirements.txt
    retries: 2
    env: [AWS_ACCESS_KEY_ID]
    prices: {cpu_hour: 0.5}
storage: {cache: file:///shared/cache}
stages:
  prep: {cmd: echo, kind: transform}
  train: {cmd: echo, kind: train}
  score: {cmd: echo, kind: evaluate, executor: local}
  pinned: {cmd: echo, kind: check, executor: gpu}
tiers:
  nightly: {executor: gpu}
  pr: {}
"""


def test_executor_of_each_stage(tmp_path: Path) -> None:
    config = load(tmp_path, CONFIG)
    assert config.executor_name("train", "nightly") == "gpu"  # the tier's default
    assert config.executor_name("prep", "nightly") == "local"  # not train/evaluate
    assert config.executor_name("score", "nightly") == "local"  # its own wins
    assert config.executor_name("pinned", "pr") == "gpu"
    assert config.executor_name("train", "pr") == "local"
    assert config.executor_name("train", "default") == "local"
    spec = config.executor_spec("gpu")
    assert spec is not None and spec.retries == 2 and spec.env == ["AWS_ACCESS_KEY_ID"]
    assert spec.prices is not None and spec.prices.cpu_hour == 0.5
    assert config.is_remote("gpu") and not config.is_remote("local")


def test_unknown_executor_names_are_located(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
executors:
  gpu: {type: ray, address: http://h:8265}
stages:
  train: {cmd: echo, kind: train, executor: gpus}
tiers:
  nightly: {executor: cluster}
""")
    rendered = sorted(p.render() for p in found)
    assert any("sluice.yaml:4:" in r and "stage `train` names unknown executor `gpus`; "
               "did you mean `gpu`?" in r for r in rendered), rendered
    assert any("sluice.yaml:6:" in r and "tier `nightly` names unknown executor `cluster`"
               in r for r in rendered), rendered


def test_bad_executor_settings(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
executors:
  here: {type: local, setup: pip install x}
  gpu: {type: ray, address: ray-head}
stages:
  a: {cmd: echo}
""")
    rendered = " | ".join(p.render() for p in found)
    assert "executor `here` is of type local, which takes no `setup`" in rendered
    assert "address `ray-head` is not a URL" in rendered
    [wrong_type] = problems(tmp_path / "b", "executors:\n  bad: {type: slurm}\n")
    assert "must be 'local' or 'ray'" in wrong_type.render()
    assert "sluice.yaml:2:" in wrong_type.render()


def test_a_remote_executor_without_a_store_is_a_located_config_error(repo: Path) -> None:
    from tests.conftest import sluice

    (repo / "sluice.yaml").write_text("executors:\n  gpu: {type: ray, address: http://h:1}\n"
                                      "stages:\n  a: {cmd: echo, executor: gpu}\n")
    result = sluice(repo, "run", check=2, env={"SLUICE_CACHE_URL": ""})
    assert "executor `gpu` runs stages on a cluster, but there is no shared store" in \
        result.stderr
    assert "sluice.yaml:2:" in result.stderr
