"""A first end-to-end check: a two-stage pipeline runs, then is fully reused."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import sluice


def test_two_stage_pipeline_runs_then_is_up_to_date(repo: Path) -> None:
    (repo / "sluice.yaml").write_text(
        "stages:\n"
        "  a:\n"
        "    cmd: echo hello > ${outs.x}\n"
        "    outs: {x: a.txt}\n"
        "  b:\n"
        "    cmd: cat ${stages.a.outs.x} ${stages.a.outs.x} > ${outs.y}\n"
        "    outs: {y: b.txt}\n")
    first = sluice(repo, "run")
    assert "2 ran" in first.stdout
    assert (repo / "b.txt").read_text() == "hello\nhello\n"
    second = sluice(repo, "run")
    assert "2 cached" in second.stdout
