"""docs/config.md stays true: its example loads, and it mentions every key of the schema."""

from __future__ import annotations

import re
from pathlib import Path

from sluice.config.schema import (
    BaselineSpec,
    BudgetSpec,
    CISpec,
    ColumnDriftSpec,
    ConfigSpec,
    DatasetSpec,
    DriftSpec,
    ExecutorSpec,
    GateSpec,
    ModelSpec,
    PeriodBudgetSpec,
    PolicySpec,
    PricesSpec,
    Resources,
    SampleSpec,
    StageSpec,
    StorageSpec,
    TierSpec,
    TriggerSpec,
)
from sluice.pipeline.fingerprint import RunContext, render_command
from tests.unit._util import load_graph

DOC = Path(__file__).resolve().parents[3] / "docs" / "config.md"


def _example() -> str:
    found = re.search(r"## A complete example\n\n```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/config.md lost its complete example"
    return found.group(1)


def test_complete_example_loads(tmp_path: Path) -> None:
    config, graph = load_graph(tmp_path, _example(), {
        "params.yaml": "features: {window: 7}\ntrain: {lr: 0.01, epochs: 5}\n"})
    assert graph.order == ["unit", "features", "train", "evaluate"]
    assert graph.upstream["evaluate"] == ["train", "features"]
    assert render_command(config, config.stages["train"], RunContext(seed=3)) == (
        "python src/churn/train.py --lr 0.01 --seed 3 --out build/model.pkl")


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    for model in (ConfigSpec, StageSpec, Resources, DatasetSpec, ModelSpec, TierSpec,
                  TriggerSpec, BudgetSpec, PeriodBudgetSpec, PricesSpec, SampleSpec, GateSpec,
                  BaselineSpec, PolicySpec, DriftSpec, ColumnDriftSpec, StorageSpec, CISpec,
                  ExecutorSpec):
        for key in model.model_fields:
            assert f"`{key}`" in text or f"`resources.{key}`" in text, key
    for variable in ("SLUICE_TIER", "SLUICE_FRACTION", "SLUICE_SEED", "SLUICE_STAGE",
                     "SLUICE_RUN_ID", "SLUICE_OUTS", "SLUICE_OUT_<NAME>"):
        assert f"`{variable}`" in text, variable


def test_the_top_level_table_is_one_table_with_every_top_level_key() -> None:
    # A blank line once cut it in two: Markdown shows the rows after it as plain text.
    section = DOC.read_text().split("\n## Top level\n", 1)[1]
    table = re.match(r"\s*((?:\|.*\n)+)", section)
    assert table is not None
    rows = {re.match(r"\| `(\w+)`", line).group(1)  # type: ignore[union-attr]
            for line in table.group(1).splitlines()[2:]}
    assert rows == set(ConfigSpec.model_fields)
