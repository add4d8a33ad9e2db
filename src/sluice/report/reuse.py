"""Reusing the last report when a run changed nothing its verdicts depend on.

Evaluating gates (bootstrap intervals over every test example) and drawing the
report's plots cost seconds, which a no-op ``sluice run`` should not pay. Each
report records an *evaluation key*: a digest of what its verdicts were computed
from — the tier, every model's spec (gates included), the fingerprint of each
evaluate stage's last run (its code, model and test set), the evidence of the
verdict (the hashes of the candidate's and the baseline's files, found as
sluice.evaluate.evidence finds them: a stale workspace file never counts), and the code
that computes verdicts and draws plots. When nothing ran
and the key is the one of the latest report, that report stands, verdicts and
all.

Not reused: multi-seed tiers (their predictions come from each seed's run),
registry baselines (the alias may have moved), gates on custom metrics (their
code is the project's), tiers that register or promote, and runs with drift to
report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sluice.pipeline.fingerprint import RunContext
from sluice.util.hashing import hash_bytes
from sluice.util.version import code_stamp
from sluice.workspace.project import Project
from sluice.workspace.records import read_record


def _evidence(locator: Any, path: str | None, what: str) -> dict[str, Any] | None:
    """The hash (or why it is missing) of a file a verdict reads, as ``evidence`` finds it."""
    if path is None:
        return None
    found = locator.output(path, what)
    return {"hash": found.hash, "fingerprint": found.fingerprint, "reason": found.reason}


def evaluation_key(project: Project, tier: Any, result: Any,
                   context: RunContext | None = None) -> str | None:
    """The digest described above (after the run), or None for what is never reused."""
    spec = tier.spec
    if len(tier.seeds) > 1 or spec.register or spec.promote or \
            not any(m.evaluate is not None for m in project.config.models.values()):
        return None  # (nothing evaluated: no evidence module to import on a no-op run)
    from sluice.evaluate.evidence import Locator

    settled = {o.stage: o.status for o in result.outcomes}
    locator = Locator(project, result, context or RunContext(tier=tier.name))
    models: dict[str, Any] = {}
    for name, model in project.config.models.items():
        if model.evaluate is None or settled.get(model.evaluate) not in ("ran", "cached"):
            continue
        baseline = model.baseline
        if baseline is not None and baseline.alias is not None:
            return None
        if any(":" in gate.metric for gate in model.gates):
            return None  # a custom `module:function` metric is project code sluice cannot key
        record = read_record(project, model.evaluate)
        if record is None:
            return None
        outs = project.config.stages[model.evaluate].outs
        models[name] = {
            "spec": model.model_dump(), "evaluated": record["fingerprint"],
            # The verdict's evidence: reused only when every hash is the same.
            "evidence": {
                "candidate": {k: _evidence(locator, outs[k], k) for k in
                              (model.predictions or "predictions", model.metrics) if k in outs},
                "baseline": None if baseline is None else {
                    "predictions": _evidence(locator, baseline.predictions, "predictions"),
                    "metrics": _evidence(locator, baseline.metrics, "metrics")}}}
    if not models:
        return None
    text = json.dumps({"tier": tier.name, "fraction": tier.fraction, "models": models,
                       "code": code_stamp()}, sort_keys=True, default=str)
    return hash_bytes(text.encode())


def reusable_report(project: Project, key: str | None,
                    result: Any) -> tuple[dict[str, Any], Path] | None:
    """The latest report, if nothing ran and it was computed from ``key``."""
    if key is None or any(o.status != "cached" for o in result.outcomes) or \
            any(d.report for d in result.drift):
        return None
    from sluice.errors import UsageError
    from sluice.report.run import load_report

    try:
        report, folder = load_report(project, None)
    except UsageError:
        return None
    return (report, folder) if report.get("evaluation_key") == key else None


def evaluations_from_report(report: dict[str, Any]) -> list[Any]:
    """The report's models as ``ModelEvaluation`` objects again."""
    from sluice.evaluate.gates import GateResult, MetricRow, ModelEvaluation

    found = []
    for item in report.get("models", []):
        fields = {k: v for k, v in item.items() if k not in ("verdict", "gates_evaluated")}
        fields["metrics"] = [MetricRow(**m) for m in fields.get("metrics", [])]
        fields["gates"] = [GateResult(**g) for g in fields.get("gates", [])]
        found.append(ModelEvaluation(**fields))
    return found
