"""End-to-end: `sluice report` says whose report it shows."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import sluice
from tests.e2e.pipelines import write_project

CONFIG = """\
stages:
  make:
    cmd: echo ${tier.name} > ${outs.o}
    outs: {o: build/o.txt}
tiers:
  pr: {fraction: 0.5}
"""


def test_report_after_a_run_without_one_names_the_run_it_shows(repo: Path) -> None:
    write_project(repo, CONFIG, files={})
    sluice(repo, "run", "--tier", "pr")  # a tier run writes a report
    shown = json.loads(sluice(repo, "report", "--json").stdout)["run_id"]
    assert sluice(repo, "report").stderr == ""  # the latest run's own: nothing to say
    sluice(repo, "run")  # a plain run of a pipeline without models writes none
    result = sluice(repo, "report")
    assert f"run {shown}" in result.stdout
    note = result.stderr
    assert f"this is the report of run {shown} of 20" in note and " UTC" in note
    assert "the latest run" in note and "(tier `default`" in note and "wrote no report" in note


def test_report_without_a_ledger_creates_none(repo: Path) -> None:
    # CI's publish job gets the report folder from the build, not its database.
    write_project(repo, CONFIG, files={})
    sluice(repo, "run", "--tier", "pr")
    for path in (repo / ".sluice").glob("sluice.db*"):
        path.unlink()
    result = sluice(repo, "report")
    assert "tier `pr`" in result.stdout and result.stderr == ""
    assert not (repo / ".sluice" / "sluice.db").exists()
