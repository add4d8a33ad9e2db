"""Run reports: loading one by id, safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import UsageError
from sluice.report.run import REPORTS_DIR, load_report
from sluice.workspace.project import load_project


def test_a_run_id_that_is_a_path_is_refused(tmp_path: Path) -> None:
    # In CI's publish job, .sluice/reports comes from the pull request's own build.
    (tmp_path / "sluice.yaml").write_text("stages:\n  s: {cmd: 'true'}\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/report.json").write_text('{"run_id": "stolen"}')
    project = load_project(tmp_path)
    reports = project.state_dir / REPORTS_DIR
    reports.mkdir(parents=True)
    (reports / "latest").write_text("../../outside\n")
    with pytest.raises(UsageError, match="is not a run id"):
        load_report(project, None)
    with pytest.raises(UsageError, match="is not a run id"):
        load_report(project, "../../outside")
