"""The export model: steps, DAG edges, the check gate, resources, deadlines, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import ConfigError, UsageError
from sluice.export.model import FINISH, START, VERSION_ENV, Param, build_export
from sluice.workspace.project import Project
from tests.unit.export.conftest import IMAGE


def test_one_step_per_stage_with_dag_deps_and_checks_before_expensive(project: Project) -> None:
    export = build_export(project, "merge", IMAGE)
    names = [s.name for s in export.stages]
    assert names == project.graph.order
    by_name = {s.name: s for s in export.stages}
    checks = [n for n in names if project.config.stages[n].kind == "check"]
    assert set(checks) == {"unit", "validate-regions"}
    for step in export.stages:
        assert START in step.deps
        assert set(project.graph.upstream[step.name]) <= set(step.deps)
        if step.kind in ("train", "evaluate"):
            assert set(checks) <= set(step.deps), step.name
        elif step.kind == "transform":
            assert not set(checks) & set(step.deps)
    assert by_name["train_churn"].args == ("sluice", "stage", "exec", "--run", Param("run_id"),
                                           "--stage", "train_churn")
    assert export.finish.name == FINISH and export.finish.args[:3] == ("sluice", "tier", "finish")
    assert export.start.args[:5] == ("sluice", "tier", "start", "--tier", "merge")


def test_resources_deadlines_retries_and_placement(project: Project) -> None:
    export = build_export(project, "merge", IMAGE)
    train = next(s for s in export.stages if s.name == "train_churn")
    assert (train.cpus, train.gpus, train.memory, train.timeout) == (2, 1, 2 * 10**9, 600)
    assert train.retries == 3  # the gpu executor's retries
    assert train.placement.gpu_type == "nvidia-tesla-a100"
    assert train.placement.cluster == "gpu-cluster"
    assert dict(train.placement.node_selector) == {"pool": "ml"}
    unit = next(s for s in export.stages if s.name == "unit")
    assert unit.retries == 2 and unit.placement.cluster == "cpu-cluster"
    assert export.deadline == 3600  # merge: budget wall 1h
    assert export.image_pinned
    assert dict(export.env)[VERSION_ENV] == export.sluice_version
    assert dict(export.secrets) == {"SLUICE_DATABASE_URL": "sluice-db/url",
                                    "AWS_SECRET_ACCESS_KEY": "store-creds/secret"}


def test_no_image_unknown_tier_are_usage_errors(project: Project) -> None:
    with pytest.raises(UsageError, match="no image"):
        build_export(project, "merge")
    with pytest.raises(UsageError, match="unknown tier `merg`"):
        build_export(project, "merg", IMAGE)


def test_an_unknown_executor_under_export_is_a_config_error(tmp_path: Path) -> None:
    from sluice.workspace.project import load_project
    from tests.unit.export.conftest import EXPORT_SECTION, copy_example

    section = EXPORT_SECTION.replace("    gpu: {gpu_type", "    gpus: {gpu_type")
    root = copy_example(tmp_path, section)
    with pytest.raises(ConfigError, match="unknown executor `gpus`") as error:
        build_export(load_project(root), "merge", IMAGE)
    assert "sluice.yaml:" in str(error.value) and "did you mean `gpu`" in str(error.value)
