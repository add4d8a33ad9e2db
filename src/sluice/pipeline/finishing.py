"""Settling a stage once it is decided: a reused result, or a job that ended.

The scheduler (:mod:`sluice.pipeline.scheduler`) decides which stages run and starts
them; the functions here turn what came of one stage into its :class:`StageOutcome`.
A cached result is restored into the workspace (or found there); a finished job's
outputs are stored with their run record, or a remote stage's record is read back
from the shared store; a job that did not succeed gets the reason why.

They take the run's state they need as arguments and update two of its collections in
place: ``known_outputs`` (output path -> hash, so later decisions need not hash those
files again) and ``to_ignore`` (stages whose outputs are to be git-ignored). The
stage's lock, the budget and the stopping of other stages stay with the scheduler.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sluice.errors import SluiceError
from sluice.pipeline.base import StageOutcome
from sluice.workspace.outputs import restore_outputs, save_outputs
from sluice.workspace.project import Project
from sluice.workspace.records import write_record
from sluice.workspace.uses import run_metadata

if TYPE_CHECKING:
    from sluice.execute.base import JobResult
    from sluice.pipeline.plan import Decision

_LOG_TAIL_LINES = 20


def log_tail(path: str) -> list[str]:
    """The last lines of a stage's log, shown with a stage that did not succeed."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return lines[-_LOG_TAIL_LINES:]


def reused_outcome(project: Project, name: str, decision: Decision,
                   outcomes: Mapping[str, StageOutcome], *, known_outputs: dict[str, str],
                   to_ignore: list[str]) -> StageOutcome:
    """The outcome of ``name`` when ``decision`` reuses a result: restored from the
    store, or up to date in the workspace (``outcomes``: the stages settled so far)."""
    try:
        if decision.action == "restore" and decision.cached is not None:
            outs = decision.cached["outs"]
            restore_outputs(project, outs)
            to_ignore.append(name)
            meta = decision.cached.get("meta")
            write_record(project, name, decision.fingerprint, decision.components,
                         outs, decision.cached.get("wall_s"),
                         meta if isinstance(meta, dict) else None)
            outcome = StageOutcome(name, "cached", "restored from cache",
                                   decision.fingerprint, restored=True)
        else:
            outs = {}
            outcome = StageOutcome(name, "cached", "up to date", decision.fingerprint)
        reran = [u for u in project.graph.upstream[name]
                 if u in outcomes and outcomes[u].status == "ran"]
        if reran:
            # Early cut-off: upstream reran but wrote the same bytes.
            names = ", ".join(f"`{u}`" for u in reran)
            outcome.reason = f"inputs unchanged after {names} reran — cached"
        known_outputs.update({o["path"]: o["hash"] for o in outs.values()})
    except SluiceError as exc:
        outcome = StageOutcome(name, "failed", exc.render(), decision.fingerprint)
    return outcome


def job_outcome(project: Project, result: JobResult, decision: Decision, *, run_id: str,
                selected: list[str], where: dict[str, str], capped: str | None,
                known_outputs: dict[str, str], to_ignore: list[str]) -> StageOutcome:
    """The outcome of a stage whose job ended: "ran", its outputs stored and its record
    written, or why not. ``where``: each selected stage's executor; ``capped``: the
    budget that lowered the job's timeout, if one did."""
    # The log was masked as it was written (it is uploaded as a CI artifact).
    log = str(project.log_path(result.stage).relative_to(project.root))
    outcome = StageOutcome(result.stage, "ran", "; ".join(decision.reasons),
                           decision.fingerprint, result.wall_s, result.cpu_s,
                           result.max_rss_bytes, result.returncode, log,
                           executor=where[result.stage])
    remote = project.config.is_remote(where[result.stage])
    try:
        if result.ok and remote:
            _finish_remote(project, result, decision, outcome, selected=selected, where=where,
                           known_outputs=known_outputs, to_ignore=to_ignore)
        elif result.ok:
            stage = project.config.stages[result.stage]
            outs = save_outputs(project, stage)
            meta = run_metadata(stage.spec.uses, stage.name, project.root,
                                project.log_path(stage.name))
            project.store.put_run(decision.fingerprint, {
                "stage": result.stage, "outs": outs, "wall_s": result.wall_s,
                "cpu_s": result.cpu_s, "max_rss_bytes": result.max_rss_bytes,
                "run_id": run_id, "created": time.time(),
                **({"meta": meta} if meta else {})})
            write_record(project, result.stage, decision.fingerprint,
                         decision.components, outs, result.wall_s, meta)
            known_outputs.update({o["path"]: o["hash"] for o in outs.values()})
        elif result.timed_out and capped is not None:
            outcome.status = "budget"
            outcome.reason = f"killed after {result.wall_s:.1f} s: {capped} is spent"
        elif result.timed_out:
            limit = project.config.stages[result.stage].spec.timeout
            outcome.status, outcome.reason = "timeout", f"killed after its {limit:g} s timeout"
        elif result.cancelled:
            outcome.status, outcome.reason = "cancelled", "stopped: another stage failed"
        elif result.error is not None:
            outcome.status, outcome.reason = "failed", result.error
        else:
            outcome.status = "failed"
            outcome.reason = f"command exited with code {result.returncode}"
    except SluiceError as exc:
        outcome.status, outcome.reason = "failed", exc.render()
    return outcome


def _finish_remote(project: Project, result: JobResult, decision: Decision,
                   outcome: StageOutcome, *, selected: list[str], where: dict[str, str],
                   known_outputs: dict[str, str], to_ignore: list[str]) -> None:
    """A capsule succeeded: its run record is in the store; restore outputs only if
    a stage running here reads them, or a model's gates or registry will."""
    from sluice.pipeline.remote import needed_here, stored_result

    record = stored_result(project, result.stage, decision.fingerprint)
    outs = record["outs"]
    for key in ("cpu_s", "max_rss_bytes"):
        if isinstance(record.get(key), int | float):
            setattr(outcome, key, type(getattr(outcome, key) or 0)(record[key]))
    if needed_here(project, result.stage, selected, where):
        restore_outputs(project, outs)
        to_ignore.append(result.stage)
        outcome.restored = True
    meta = record.get("meta")
    write_record(project, result.stage, decision.fingerprint, decision.components,
                 outs, result.wall_s, meta if isinstance(meta, dict) else None)
    known_outputs.update({o["path"]: o["hash"] for o in outs.values()})
