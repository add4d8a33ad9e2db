"""What a pipeline run is told and what it hands back: options, events and outcomes.

Shared by the scheduler (:mod:`sluice.pipeline.scheduler`), the tier orchestration and
the CLI's progress display, so none of them imports the scheduler for its types.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sluice.errors import SluiceError
from sluice.pipeline.fingerprint import RunContext

if TYPE_CHECKING:
    from sluice.pipeline.budget import Tracker
    from sluice.pipeline.plan import Decision

Status = Literal["ran", "cached", "failed", "timeout", "budget", "skipped", "gated",
                 "cancelled"]
FAILED: tuple[Status, ...] = ("failed", "timeout", "budget", "skipped", "gated", "cancelled")


@dataclass
class StageOutcome:
    """How one stage's part of a run ended."""

    stage: str
    status: Status
    reason: str = ""
    fingerprint: str | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    max_rss_bytes: int | None = None
    returncode: int | None = None
    log_path: str | None = None
    log_tail: list[str] = field(default_factory=list)
    restored: bool = False  # cached: True when outputs were copied back from the store
    executor: str = "local"  # where it ran (recorded, never fingerprinted)

    def to_json(self) -> dict[str, Any]:
        # As dataclasses.asdict, without its deep copy of every value (plain values
        # here): every run writes one per stage.
        value = {name: getattr(self, name) for name in _OUTCOME_FIELDS}
        value["log_tail"] = list(self.log_tail)
        return value


_OUTCOME_FIELDS = tuple(f.name for f in fields(StageOutcome))


@dataclass
class Event:
    """Something the user may want to see while a run goes on."""

    kind: Literal["plan", "start", "finish", "waiting", "note"]
    stage: str
    message: str = ""
    outcome: StageOutcome | None = None
    total: int = 0


@dataclass
class RunResult:
    """A run's outcomes and what followed them (verdicts, registry, report)."""

    run_id: str
    outcomes: list[StageOutcome]
    wall_s: float
    ledger_error: SluiceError | None = None
    evaluations: list[Any] = field(default_factory=list)  # sluice.evaluate.gates.ModelEvaluation
    registered: list[Any] = field(default_factory=list)  # sluice.registry.versions.Version
    moves: list[Any] = field(default_factory=list)  # sluice.registry.promotion.Outcome, or why not
    report_dir: Path | None = None
    drift: list[Any] = field(default_factory=list)  # sluice.data.drift_check.DatasetDrift
    report_reused: str | None = None  # the run whose report still stands (nothing changed)

    @property
    def ok(self) -> bool:
        return all(o.status not in FAILED for o in self.outcomes) and \
            not any(d.failed for d in self.drift)

    def to_json(self) -> dict[str, Any]:
        value = {"run_id": self.run_id, "ok": self.ok, "wall_s": round(self.wall_s, 3),
                 "stages": [o.to_json() for o in self.outcomes]}
        if self.drift:
            value["drift"] = [d.to_json() for d in self.drift]
        return value


@dataclass
class RunOptions:
    """What the scheduler is told to run, and how."""

    targets: list[str] | None = None
    jobs: int = 0  # 0: one per CPU
    force: bool = False
    keep_going: bool = True
    context: RunContext = field(default_factory=RunContext)
    executor: str = "local"
    tracker: Tracker | None = None  # budgets in force while running
    over_budget: frozenset[str] = frozenset()  # expensive stages skipped by on_budget
    run_id: str | None = None
    failed_checks: tuple[str, ...] = ()  # checks settled before the run (drift) that failed
    # The decisions of this run's own plan, made moments before: an up-to-date stage
    # whose record and upstream are as they were is not fingerprinted a second time.
    planned: dict[str, Decision] = field(default_factory=dict)
    planned_at_ns: int = 0  # time.time_ns() before that plan read the stages' records


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(3).hex()
