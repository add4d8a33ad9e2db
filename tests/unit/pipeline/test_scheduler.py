"""The scheduler in-process: decisions per stage, and remote stages in read-only runs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

import sluice.pipeline.scheduler as scheduler
from sluice.pipeline.base import RunOptions
from sluice.pipeline.scheduler import run_pipeline
from sluice.workspace.project import READ_ONLY_ENV, load_project
from tests.conftest import git
from tests.unit._util import write_project


def _committed(repo: Path, config: str) -> None:
    write_project(repo, config, {".gitignore": "build/\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")


def test_a_stage_waiting_for_room_is_decided_once(repo: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    count = 30
    stages = "".join(f"  s{i}: {{cmd: 'echo {i} > build/s{i}.txt', outs: {{o: build/s{i}.txt}}}}\n"
                     for i in range(count))
    _committed(repo, "stages:\n" + stages)
    decisions: list[str] = []
    real = scheduler.decide

    def counting(project: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        decisions.append(name)
        return real(project, name, *args, **kwargs)

    monkeypatch.setattr(scheduler, "decide", counting)
    result = run_pipeline(load_project(repo), RunOptions(jobs=1))
    assert {o.status for o in result.outcomes} == {"ran"}
    # One per stage, plus a few at most: never one per stage per pass of the loop.
    assert len(decisions) <= count + 3, f"{len(decisions)} decisions for {count} stages"

    # Cached stages are not held back behind a full executor: all are decided once.
    decisions.clear()
    again = run_pipeline(load_project(repo), RunOptions(jobs=1))
    assert {o.status for o in again.outcomes} == {"cached"}
    assert sorted(decisions) == sorted(f"s{i}" for i in range(count))


def test_a_read_only_run_never_sends_a_remote_stage(repo: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    _committed(repo, f"""\
        storage: {{cache: "{shared.as_uri()}"}}
        executors:
          gpu: {{type: ray, address: "http://127.0.0.1:9"}}
        stages:
          train: {{executor: gpu, cmd: 'echo x > build/m.txt', outs: {{m: build/m.txt}}}}
          score: {{cmd: 'cat build/m.txt', inputs: [stages.train.outs.m]}}
        """)
    monkeypatch.setenv(READ_ONLY_ENV, "1")
    result = run_pipeline(load_project(repo), RunOptions(jobs=1))
    train, score = result.outcomes
    assert train.status == "failed", train
    assert "only reads the shared store" in train.reason
    assert "merge or schedule tier" in train.reason and READ_ONLY_ENV in train.reason
    assert score.status == "skipped"
    written = [p for p in shared.rglob("*") if p.is_file()] if shared.exists() else []
    assert written == [], f"a read-only run wrote the shared store: {written}"


def _chain(repo: Path, count: int) -> list[str]:
    stages = "".join(
        f"  s{i}: {{cmd: 'echo {i} > build/s{i}.txt', outs: {{o: build/s{i}.txt}}"
        + (f", inputs: [stages.s{i - 1}.outs.o]" if i else "") + "}\n"
        for i in range(count))
    _committed(repo, "stages:\n" + stages)
    return [f"s{i}" for i in range(count)]


def test_a_noop_run_fingerprints_each_stage_once(repo: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import sluice.pipeline.plan as plan
    from sluice.orchestrate.tier import run_tier
    from sluice.orchestrate.tier_plan import TierRequest

    names = _chain(repo, 4)
    _, first = run_tier(load_project(repo), TierRequest())
    assert {o.status for o in first.outcomes} == {"ran"}
    fingerprinted: list[str] = []
    real = plan.stage_components

    def counting(project: Any, stage: Any, *args: Any, **kwargs: Any) -> Any:
        fingerprinted.append(stage.name)
        return real(project, stage, *args, **kwargs)

    monkeypatch.setattr(plan, "stage_components", counting)
    _, again = run_tier(load_project(repo), TierRequest())
    assert [(o.stage, o.status) for o in again.outcomes] == [(n, "cached") for n in names]
    # The plan decided; the run took its up-to-date decisions rather than hash again.
    assert sorted(fingerprinted) == names


def test_a_planned_decision_whose_record_changed_is_made_again(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.pipeline.fingerprint import RunContext
    from sluice.pipeline.plan import Decision, make_plan
    from sluice.workspace.records import read_record, write_record

    names = _chain(repo, 3)
    run_pipeline(load_project(repo), RunOptions())
    project = load_project(repo)
    planned: dict[str, Decision] = {}
    planned_at_ns = time.time_ns()
    make_plan(project, None, RunContext(), decisions=planned)
    assert {d.action for d in planned.values()} == {"up-to-date"}
    # Another run rewrote s1's record between this run's plan and its start.
    record = read_record(project, "s1")
    assert record is not None
    write_record(project, "s1", record["fingerprint"], record["components"], record["outs"],
                 123.0)
    decided: list[str] = []
    real = scheduler.decide

    def counting(project: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        decided.append(name)
        return real(project, name, *args, **kwargs)

    monkeypatch.setattr(scheduler, "decide", counting)
    result = run_pipeline(project, RunOptions(planned=planned, planned_at_ns=planned_at_ns))
    assert [o.status for o in result.outcomes] == ["cached"] * len(names)
    assert decided == ["s1"]


def test_a_noop_run_reads_no_record_the_plan_read_unless_it_is_recent(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.orchestrate.tier import run_tier
    from sluice.orchestrate.tier_plan import TierRequest

    names = _chain(repo, 3)
    run_tier(load_project(repo), TierRequest())
    project = load_project(repo)
    an_hour_ago = time.time() - 3600
    for name in names[:2]:  # written by an earlier run; s2's record is just written
        os.utime(project.record_path(name), (an_hour_ago, an_hour_ago))
    read_again: list[str] = []
    real = scheduler.read_record

    def counting(project: Any, name: str) -> Any:
        read_again.append(name)
        return real(project, name)

    monkeypatch.setattr(scheduler, "read_record", counting)
    _, again = run_tier(project, TierRequest())
    assert [(o.stage, o.status) for o in again.outcomes] == [(n, "cached") for n in names]
    assert read_again == ["s2"]


def test_an_outcome_as_json_is_what_asdict_gives() -> None:
    from dataclasses import asdict

    from sluice.pipeline.base import StageOutcome

    outcome = StageOutcome("a", "failed", "why", "f", 1.5, 2.5, 3, 1, "logs/a.log",
                           ["last", "lines"], True, "gpu")
    as_json = outcome.to_json()
    assert as_json == asdict(outcome)
    as_json["log_tail"].append("more")  # a copy: the outcome keeps its own
    assert outcome.log_tail == ["last", "lines"]


def _ignored(repo: Path) -> set[str]:
    gitignore = repo / ".gitignore"
    return set(gitignore.read_text().splitlines()) if gitignore.exists() else set()


def test_outputs_of_stages_that_wrote_here_are_git_ignored_and_no_others(repo: Path) -> None:
    _committed(repo, """\
stages:
  gate: {cmd: 'exit 1', kind: check}
  a: {cmd: 'echo a > a.txt', outs: {o: a.txt}}
  b: {cmd: 'echo b > b.txt', outs: {o: b.txt}}
""")
    project = load_project(repo)
    run_pipeline(project, RunOptions(targets=["a"]))
    assert {"/a.txt"} <= _ignored(repo) and "/b.txt" not in _ignored(repo)
    (repo / ".gitignore").write_text("build/\n")
    (repo / "a.txt").unlink()
    result = run_pipeline(load_project(repo), RunOptions(targets=["a"]))
    assert [o.status for o in result.outcomes] == ["cached"]  # restored from the cache
    assert "/a.txt" in _ignored(repo)
    result = run_pipeline(load_project(repo), RunOptions())  # the failing check gates b
    assert {o.stage: o.status for o in result.outcomes}["b"] != "ran"
    assert "/b.txt" not in _ignored(repo)


def test_an_interrupted_run_still_ignores_what_it_started(repo: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _committed(repo, "stages:\n  slow: {cmd: 'echo x > x.txt; sleep 30', outs: {o: x.txt}}\n")
    from sluice.errors import Interrupted
    from sluice.pipeline.run_executors import RunExecutors

    real_wait, real_ignore = RunExecutors.wait, scheduler._Scheduler.ignore_outputs
    calls: list[str] = []

    def wait(self: RunExecutors, timeout: float) -> Any:
        calls.append("wait")
        if calls.count("wait") == 1:  # the stage has started: a Ctrl-C arrives
            raise KeyboardInterrupt
        return real_wait(self, timeout)

    def ignore_outputs(self: Any) -> None:
        calls.append("ignore")
        if calls.count("ignore") > 1:  # the one before the first wait comes too late
            real_ignore(self)

    monkeypatch.setattr(RunExecutors, "wait", wait)
    monkeypatch.setattr(scheduler._Scheduler, "ignore_outputs", ignore_outputs)
    with pytest.raises(Interrupted):
        run_pipeline(load_project(repo), RunOptions())
    assert "/x.txt" in _ignored(repo)
