"""Groups, error annotations and the GitHub step summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sluice.ci.annotations import (
    after_run,
    error_annotation,
    group_end,
    group_start,
    run_annotations,
    write_step_summary,
)
from tests.unit._util import load

GITHUB = {"GITHUB_ACTIONS": "true"}
CONFIG = """\
version: 1
stages:
  unit: {cmd: "true", kind: check}
  train:
    cmd: "true"
    kind: train
"""


@dataclass
class Outcome:
    stage: str
    status: str
    reason: str = ""
    log_tail: list[str] = field(default_factory=list)


@dataclass
class Result:
    report_dir: Path | None
    outcomes: list[Outcome]
    evaluations: list[object] = field(default_factory=list)


@dataclass
class Project:
    config: object


def test_groups_per_ci_system() -> None:
    assert group_start("stages", GITHUB) == "::group::stages"
    assert group_end("stages", GITHUB) == "::endgroup::"
    gitlab = group_start("Run tier pr", {"GITLAB_CI": "true"})
    assert gitlab.startswith("\x1b[0Ksection_start:") and gitlab.endswith("Run tier pr")
    assert ":run_tier_pr[collapsed=true]\r" in gitlab
    assert "section_end:" in (group_end("Run tier pr", {"GITLAB_CI": "true"}) or "")
    assert group_start("stages", {"JENKINS_URL": "x"}) == "== stages"
    assert group_end("stages", {}) is None


def test_error_annotation_escapes_its_properties_and_message() -> None:
    line = error_annotation("50% failed\nsee log", file="a,b:c.yaml", line=7, title="x: y")
    assert line == "::error file=a%2Cb%3Ac.yaml,line=7,title=x%3A y::50%25 failed%0Asee log"
    assert error_annotation("plain") == "::error::plain"


def test_failed_stage_annotation_points_at_its_definition(tmp_path: Path) -> None:
    config = load(tmp_path, CONFIG)
    lines = run_annotations(config, [Outcome("unit", "ran"),
                                     Outcome("train", "failed", "exit code 1", ["boom"])], [])
    assert lines == ["::error file=sluice.yaml,line=4,title=stage train%3A failed::"
                     "exit code 1%0Aboom"]


def test_step_summary_is_appended_only_in_github(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    assert write_step_summary("# report", {"GITHUB_STEP_SUMMARY": str(summary)}) is None
    assert write_step_summary("# report", {**GITHUB, "GITHUB_STEP_SUMMARY": str(summary)}) \
        == summary
    assert summary.read_text() == "before\n# report\n"


def test_after_run_writes_the_report_and_returns_annotations(tmp_path: Path) -> None:
    config = load(tmp_path / "project", CONFIG)
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("## sluice run\n")
    summary = tmp_path / "summary.md"
    result = Result(report, [Outcome("unit", "failed", "exit code 2")])
    env = {**GITHUB, "GITHUB_STEP_SUMMARY": str(summary)}
    lines = after_run(Project(config), result, env)
    assert summary.read_text() == "## sluice run\n\n"
    assert len(lines) == 1 and lines[0].startswith("::error file=sluice.yaml,line=3,")
    assert after_run(Project(config), result, {"GITLAB_CI": "true"}) == []
