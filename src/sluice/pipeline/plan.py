"""What a run would do, and why, without running anything.

For each selected stage, in run order: ``up-to-date`` (fingerprint and outputs
match the last run here), ``restore`` (an earlier run with this fingerprint is in
the cache), or ``run`` with the reasons (what changed, never run, forced, or an
upstream stage that will run). The plan is data: printed, or serialised to JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sluice.errors import UsageError
from sluice.pipeline.fingerprint import (
    MissingDependency,
    RunContext,
    describe_changes,
    fingerprint_of,
    stage_components,
)
from sluice.util.suggest import did_you_mean
from sluice.workspace.outputs import outputs_match, record_is_restorable
from sluice.workspace.project import Project
from sluice.workspace.records import read_record

Action = Literal["run", "restore", "up-to-date"]


@dataclass
class StagePlan:
    """One stage's line of a plan: its action and the reasons."""

    stage: str
    kind: str
    action: Action
    reasons: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    last_wall_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def select_stages(project: Project, targets: list[str] | None) -> list[str]:
    """Stage names to consider, in run order: the targets (stages or models) and their upstream."""
    if targets is None:
        return list(project.graph.order)
    config = project.config
    wanted: list[str] = []
    for target in targets:
        if target in config.stages:
            wanted.append(target)
        elif target in config.models:
            model = config.models[target]
            wanted += [s for s in (model.train, model.evaluate) if s]
        else:
            names = list(config.stages) + list(config.models)
            raise UsageError(f"no stage or model named `{target}`" + did_you_mean(target, names),
                             hint="`sluice status` lists the stages")
    return project.graph.with_upstream(wanted + validations_for(project, wanted))


def validations_for(project: Project, stages: list[str]) -> list[str]:
    """The validation checks of the datasets that ``stages`` (and their upstream) read."""
    from sluice.config.builtin_stages import stage_name
    from sluice.workspace.datasets import datasets_read

    read = datasets_read(project, stages, lambda dataset: dataset.schema is not None)
    return [stage_name(d) for d in read if stage_name(d) in project.config.stages]


@dataclass
class Decision:
    """What to do with one stage whose upstream is settled."""

    action: Action
    reasons: list[str]
    fingerprint: str
    components: dict[str, Any]
    cached: dict[str, Any] | None = None  # the run-cache record to restore from
    record: dict[str, Any] | None = None  # the stage's record it was decided against


_UNREAD: Any = object()  # decide() reads the stage's record itself


def decide(project: Project, stage_name: str, ctx: RunContext, *, force: bool,
           known_outputs: dict[str, str], last: dict[str, Any] | None = _UNREAD) -> Decision:
    """Fingerprint one stage and decide between up-to-date, restore and run.

    ``last`` is the stage's record when the caller has just read it.
    Raises MissingDependency when a dependency does not exist.
    """
    stage = project.config.stages[stage_name]
    components = stage_components(project, stage, ctx, known_outputs)
    fingerprint = fingerprint_of(components)
    if last is _UNREAD:
        last = read_record(project, stage_name)
    if force:
        return Decision("run", ["forced (--force)"], fingerprint, components)
    if last is not None and last["fingerprint"] == fingerprint and \
            outputs_match(project, last["outs"]):
        return Decision("up-to-date", [], fingerprint, components, record=last)
    cached = project.store.get_run(fingerprint)
    if cached is not None and record_is_restorable(project, cached):
        if last is not None and last["fingerprint"] == fingerprint:
            reason = "outputs missing or modified; restoring from cache"
        else:
            reason = "same inputs as an earlier run; restoring from cache"
        return Decision("restore", [reason], fingerprint, components, cached)
    if last is None:
        reasons = ["never run here"]
    elif last["fingerprint"] == fingerprint:
        reasons = ["outputs missing or modified, and not in the cache"]
    else:
        reasons = describe_changes(last.get("components", {}), components)
    return Decision("run", reasons, fingerprint, components)


def make_plan(project: Project, targets: list[str] | None, ctx: RunContext,
              *, force: bool = False,
              decisions: dict[str, Decision] | None = None) -> list[StagePlan]:
    """Each selected stage's plan, in run order; ``decisions`` (when given) receives the
    decision behind each, for a run to reuse (sluice.pipeline.scheduler)."""
    selected = select_stages(project, targets)
    plans: dict[str, StagePlan] = {}
    known_outputs: dict[str, str] = {}
    for name in selected:
        stage = project.config.stages[name]
        last = read_record(project, name)
        last_wall = last.get("wall_s") if last else None
        rerunning = [u for u in project.graph.upstream[name]
                     if u in plans and plans[u].action == "run"]
        if rerunning:
            plans[name] = StagePlan(name, stage.kind, "run",
                                    [f"upstream `{u}` will run" for u in rerunning]
                                    + ["reused instead if its outputs come out identical"],
                                    last_wall_s=last_wall)
            continue
        try:
            decision = decide(project, name, ctx, force=force, known_outputs=known_outputs,
                              last=last)
        except MissingDependency as exc:
            plans[name] = StagePlan(name, stage.kind, "run", [f"will fail: {exc.message}"],
                                    last_wall_s=last_wall)
            continue
        plans[name] = StagePlan(name, stage.kind, decision.action, decision.reasons,
                                decision.fingerprint, last_wall)
        if decisions is not None:
            decisions[name] = decision
        source = decision.cached if decision.cached is not None else last
        if decision.action != "run" and source is not None:
            known_outputs.update({o["path"]: o["hash"] for o in source["outs"].values()})
    project.stat_cache.flush()
    return [plans[name] for name in selected]


def explain_stage(project: Project, name: str, ctx: RunContext) -> dict[str, Any]:
    """What a stage depends on, including the Python files discovered from its imports."""
    from sluice.pipeline.fingerprint import discovered_imports, render_command

    if name not in project.config.stages:
        names = list(project.config.stages)
        raise UsageError(f"no stage named `{name}`" + did_you_mean(name, names),
                         hint="`sluice status` lists the stages")
    stage = project.config.stages[name]
    command = render_command(project.config, stage, ctx)
    return {
        "stage": name,
        "kind": stage.kind,
        "command": command,
        "deps": list(stage.deps),
        "inputs": [i.ref for i in stage.inputs],
        "params": list(stage.spec.params),
        "discovered_imports": discovered_imports(project, stage, command),
        "discover_imports": stage.spec.discover_imports,
        "upstream": project.graph.upstream[name],
        "downstream": project.graph.downstream[name],
        "outs": dict(stage.outs),
    }
