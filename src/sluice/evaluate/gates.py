"""Gates: compare each candidate model with its baseline, example by example.

For every model with an evaluate stage in the run: read the candidate's
per-example predictions (one set per seed), the baseline's (a predictions
file, or a registry alias), compute sluice's own metrics, and decide
every gate that applies to the tier as PASS, FAIL or INCONCLUSIVE from a
confidence interval (docs/gates.md). Holm's correction spans the gates of one
model. Verdicts are deterministic: resampling is seeded.

Every file read is evidence the run can account for (sluice.evaluate.evidence); every
gate that applies is listed, INCONCLUSIVE with the reason when its evidence is
missing.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sluice.errors import SluiceError
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from sluice.config.schema import GateSpec, ModelSpec
    from sluice.evaluate.evidence import Locator
    from sluice.pipeline.base import RunResult
    from sluice.pipeline.fingerprint import RunContext
    from sluice.stats.paired import Interval
    from sluice.stats.predictions import Predictions

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]
RESAMPLES = 2000  # per interval: enough for stable 95 % ends, quick on 10^5 examples


@dataclass(frozen=True)
class MetricRow:
    metric: str
    candidate: float
    baseline: float | None = None
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    method: str = ""
    seeds: list[float] = field(default_factory=list)  # the candidate's value per seed


@dataclass(frozen=True)
class GateResult:
    metric: str
    rule: str  # "max_regression 0.01", "min 0.8", ...
    slice: str | None  # "region=north"
    verdict: Verdict
    point: float | None
    low: float | None
    high: float | None
    method: str
    confidence: float
    reason: str
    candidate: float | None = None
    baseline: float | None = None
    n: int = 0
    # The prediction hashes it was decided on ({"candidate": …, "baseline": …}).
    evidence: dict[str, str | None] = field(default_factory=dict)
    evaluated: bool = True  # False: its evidence is missing (INCONCLUSIVE with the reason)


@dataclass
class ModelEvaluation:
    model: str
    candidate: str  # where the candidate's predictions came from
    baseline: str | None  # what it was compared with: a file, or MODEL@ALIAS (version N)
    metrics: list[MetricRow] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seeds: int = 1
    baseline_file: str | None = None  # a predictions file in the repo, for plots
    test_set: str | None = None  # test_set_id of the candidate's predictions
    # Metrics the stage reported itself (its metrics JSON): compared as point values only.
    reported: list[dict[str, Any]] = field(default_factory=list)
    # What the verdict used: {"candidate": Evidence JSON, "baseline": Evidence JSON or None,
    # "candidate_seeds": [hashes of later seeds]} (sluice.evaluate.evidence).
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict | None:
        found = {g.verdict for g in self.gates}
        if "FAIL" in found:
            return "FAIL"
        if "INCONCLUSIVE" in found:
            return "INCONCLUSIVE"
        return "PASS" if found else None

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["verdict"] = self.verdict
        value["gates_evaluated"] = sum(1 for g in self.gates if g.evaluated)
        return value


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)



def _rule(gate: GateSpec) -> list[tuple[str, Any]]:
    return [(r, getattr(gate, r)) for r in ("min", "max", "max_regression", "min_improvement")
            if getattr(gate, r) is not None]


def _margin(value: Any) -> tuple[float, bool]:
    """(margin, relative) from ``0.01`` or ``"2%"``."""
    if isinstance(value, str):
        return float(value.strip().rstrip("%")) / 100, True
    return float(value), False


def _interval(gate: GateSpec, metric: str, candidates: list[Predictions],
              baseline: Predictions | None, direction: str) -> Interval:
    """The gate's interval, by the method it names and on the metric it names, or a
    SluiceError saying why there is none (the gate is then INCONCLUSIVE, with the reason).

    Load checks (sluice.config.checks) confine mcnemar to accuracy with a margin of 0 and one seed,
    and delong to roc_auc; weights are known only now, so they are refused here.
    """
    from sluice.errors import UsageError
    from sluice.stats import paired as stats

    paired = direction in ("max_regression", "min_improvement")
    if paired and baseline is not None and gate.method in ("mcnemar", "delong"):
        if any(p.weight is not None for p in (*candidates, baseline)):
            raise UsageError(f"method: {gate.method} counts every example once, and these "
                             "predictions have a `weight` column; use method: bootstrap, "
                             "which weighs examples")
        if gate.method == "mcnemar":
            if len(candidates) > 1:
                raise UsageError(f"McNemar's exact test compares one candidate, not "
                                 f"{len(candidates)} seeds; use method: bootstrap")
            right_c, right_b = (p.predicted_labels() for p in (candidates[0], baseline))
            if right_c is None or right_b is None:
                raise UsageError("method: mcnemar needs predicted labels (`y_pred`, or "
                                 "probabilities) from both models")
            test = stats.mcnemar_exact(right_c == candidates[0].y_true,
                                       right_b == baseline.y_true, gate.confidence)
            # the exact p is what decides (at a margin of 0): show it with the verdict
            return replace(test.interval, method=f"mcnemar, exact p = {test.p_value:.3g}")
        tests: list[Interval] = []
        for cand in candidates:
            if cand.y_score is None or baseline.y_score is None:
                raise UsageError("method: delong needs scores (`y_score`) from both models")
            tests.append(stats.delong(cand.y_true, cand.y_score, baseline.y_score,
                                      gate.confidence).interval)
    else:
        tests = [stats.paired_bootstrap(metric, c, baseline, RESAMPLES, gate.confidence)
                 if paired and baseline is not None else
                 stats.bootstrap(metric, c, RESAMPLES, gate.confidence) for c in candidates]
    if len(tests) == 1:
        return tests[0]
    # Several seeds: the interval takes the spread between seeds into account (DeLong's
    # intervals are normal, so each seed's variance is read off exactly).
    return stats.seed_interval([iv.point for iv in tests], tests, gate.confidence)


def _gate_results(gate: GateSpec, candidates: list[Predictions], baseline: Predictions | None,
                  notes: list[str], missing: str, evidence: dict[str, str | None]
                  ) -> list[tuple[GateResult, Interval | None, Any]]:
    """Each (slice of each) rule of one gate, before Holm's correction.

    A rule that compares with the baseline, when there is none, is INCONCLUSIVE with
    ``missing`` (why there is none): listed, never dropped.
    """
    from sluice.stats.metrics import HIGHER_IS_BETTER, resolve_metric
    from sluice.stats.predictions import slice_groups

    metric = resolve_metric(gate.metric)
    higher = HIGHER_IS_BETTER.get(metric.name, True)
    parts: list[tuple[str | None, list[Predictions], Predictions | None]] = [
        (None, candidates, baseline)]
    skipped: list[str] = []
    for column in gate.slices:
        for value, index in slice_groups(candidates[0], column).items():
            if gate.slice_values is not None and value not in gate.slice_values:
                continue
            if len(index) < gate.min_slice_size:
                skipped.append(f"{column}={value} ({len(index)} examples)")
                continue
            parts.append((f"{column}={value}", [c.take(index) for c in candidates],
                          None if baseline is None else baseline.take(index)))
    results: list[tuple[GateResult, Interval | None, Any]] = []
    if skipped:
        notes.append(f"{gate.metric} gate: slices under {gate.min_slice_size} examples not "
                     "gated: " + ", ".join(skipped))
    for where, cands, base in parts:
        for direction, raw in _rule(gate):
            paired = direction in ("max_regression", "min_improvement")
            cand_value = metric.compute(cands[0])
            if paired and base is None:
                results.append((GateResult(metric.name, f"{direction} {raw}", where,
                                           "INCONCLUSIVE", None, None, None, "",
                                           gate.confidence, f"no baseline evidence: {missing}",
                                           _finite(cand_value), None, cands[0].n, evidence,
                                           evaluated=False), None, None))
                continue
            margin, relative = _margin(raw) if paired else (float(raw), False)
            base_value = metric.compute(base) if base is not None else None
            try:
                interval = _interval(gate, metric.name, cands, base, direction)
            except SluiceError as exc:
                results.append((GateResult(metric.name, f"{direction} {raw}", where,
                                           "INCONCLUSIVE", None, None, None, "", gate.confidence,
                                           f"no interval: {exc.message}", evidence=evidence),
                                None, None))
                continue
            context = (margin, direction, higher, base_value if relative else None)
            results.append((GateResult(metric.name, f"{direction} {raw}", where, "INCONCLUSIVE",
                                       _finite(interval.point), _finite(interval.low),
                                       _finite(interval.high), interval.method,
                                       gate.confidence, "", _finite(cand_value),
                                       _finite(base_value), cands[0].n, evidence),
                            interval, context))
    return results


def _explain(result: GateResult, direction: str, margin: float, relative: float | None,
             higher: bool) -> str:
    what = "candidate − baseline" if direction in ("max_regression", "min_improvement") \
        else "the candidate's value"
    interval = f"[{result.low:.4g}, {result.high:.4g}]" if result.low is not None and \
        result.high is not None else "undefined"
    bound = margin * relative if relative is not None else margin
    sense = {"max_regression": f"no worse than {bound:.4g} below the baseline" if higher
             else f"no more than {bound:.4g} above the baseline",
             "min_improvement": f"at least {bound:.4g} better than the baseline",
             "min": f"at least {bound:.4g}", "max": f"at most {bound:.4g}"}[direction]
    verdicts = {"PASS": "the whole interval meets the rule",
                "FAIL": "the whole interval breaks the rule",
                "INCONCLUSIVE": "the interval straddles the limit: more data or seeds needed"}
    level = f"{result.confidence:.0%}"
    if "exact p" in result.method:  # McNemar's verdict is its exact test: show its p
        level += f"; {result.method}"
    return f"{what} is {interval} ({level}); rule: {sense}; " \
           f"{verdicts[result.verdict]}"


def _metrics_json(path: Path, notes: list[str]) -> dict[str, float]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"metrics JSON {path.name} could not be read: {exc}")
        return {}
    if not isinstance(data, dict):
        notes.append(f"metrics JSON {path.name} is not an object of name → number")
        return {}
    return {k: float(v) for k, v in data.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _reported_metrics(project: Project, spec: ModelSpec, locator: Locator, scratch: Path,
                      notes: list[str]) -> list[dict[str, Any]]:
    """The stage's own metrics JSON next to the baseline's: point values, no interval.

    Both are read only as the bytes recorded for their stages' current fingerprints.
    """
    from sluice.evaluate.evidence import materialize

    if spec.metrics is None or spec.evaluate is None:
        return []
    found: list[dict[str, float]] = []
    paths = [project.config.stages[spec.evaluate].outs[spec.metrics]]
    if spec.baseline is not None and spec.baseline.metrics is not None:
        paths.append(spec.baseline.metrics)
    for path, what in zip(paths, ("metrics JSON", "baseline metrics JSON"), strict=False):
        try:
            found.append(_metrics_json(materialize(project, locator.output(path, what),
                                                   scratch), notes))
        except SluiceError as exc:
            notes.append(f"{what} not shown: {exc.message}")
            found.append({})
    candidate, baseline = found[0], found[1] if len(found) > 1 else {}
    return [{"metric": k, "candidate": v, "baseline": baseline.get(k),
             "delta": v - baseline[k] if k in baseline else None}
            for k, v in sorted(candidate.items())]




def unevaluated(spec: ModelSpec, tier: str, reason: str) -> list[GateResult]:
    """Every rule of every gate of ``spec`` that applies to ``tier``, INCONCLUSIVE for
    ``reason`` (the model could not be evaluated at all)."""
    return [GateResult(g.metric, f"{direction} {raw}", ", ".join(g.slices) or None,
                       "INCONCLUSIVE", None, None, None, "", g.confidence, reason,
                       evaluated=False)
            for g in spec.gates if g.tiers is None or tier in g.tiers
            for direction, raw in _rule(g)]


def evaluate_model(project: Project, name: str, spec: ModelSpec, tier: str,
                   result: RunResult, context: RunContext | None = None
                   ) -> ModelEvaluation | None:
    """Every gate of the model for ``tier``, on evidence the run can account for.

    ``context`` is the run's tier context (fraction, seed, samples): a baseline stage
    the tier did not run is looked up by its fingerprint under it (sluice.evaluate.evidence).
    """
    from sluice.evaluate.evidence import (
        Locator,
        baseline_predictions,
        materialize,
        predictions_output,
        seed_predictions,
        test_set_id,
    )
    from sluice.pipeline.fingerprint import RunContext
    from sluice.stats.predictions import align

    out = predictions_output(project, spec) if spec.evaluate else None
    if spec.evaluate is None or out is None:
        return None
    locator = Locator(project, result, context or RunContext(tier=tier))
    stage_out = project.config.stages[spec.evaluate].outs[out]
    candidate = locator.output(stage_out, "candidate predictions")
    with tempfile.TemporaryDirectory(dir=project.state_dir) as folder:
        scratch = Path(folder)
        candidates, seed_hashes = seed_predictions(
            project, result, materialize(project, candidate, scratch), spec.evaluate, out,
            scratch)
        evaluation = ModelEvaluation(name, stage_out, None, seeds=len(candidates),
                                     test_set=test_set_id(candidates[0]))
        baseline, base = baseline_predictions(project, name, spec, locator, candidates[0],
                                              scratch, evaluation)
        evaluation.reported = _reported_metrics(project, spec, locator, scratch,
                                                evaluation.notes)
    evaluation.evidence = {"candidate": candidate.to_json(), "candidate_seeds": seed_hashes,
                           "baseline": None if base is None else base.to_json()}
    missing = "no baseline configured" if base is None else base.reason
    if baseline is not None:
        aligned = [align(c, baseline) for c in candidates]
        candidates, baseline = [a[0] for a in aligned], aligned[0][1]
    elif any(r in ("max_regression", "min_improvement") for g in spec.gates
             if g.tiers is None or tier in g.tiers for r, _ in _rule(g)):
        evaluation.notes.append(f"{missing}: the gates that compare with a baseline are "
                                "INCONCLUSIVE")
    else:
        evaluation.notes.append(f"{missing}: no gate compares with a baseline")
    return _decide(evaluation, spec, tier, candidates, baseline, missing,
                   {"candidate": candidate.hash, "baseline": None if base is None else base.hash})


def _decide(evaluation: ModelEvaluation, spec: ModelSpec, tier: str,
            candidates: list[Predictions], baseline: Predictions | None, missing: str,
            evidence: dict[str, str | None]) -> ModelEvaluation:
    """Metrics with their deltas, then every applicable gate under Holm's correction."""
    from sluice.stats import paired as stats
    from sluice.stats.metrics import default_metrics, evaluate

    names = list(dict.fromkeys([*default_metrics(candidates[0]),
                                *(g.metric for g in spec.gates)]))
    cand_values = [evaluate(c, names) for c in candidates]
    base_values = evaluate(baseline, names) if baseline is not None else {}
    for metric in names:
        row = MetricRow(metric, cand_values[0][metric], _finite(base_values.get(metric)),
                        seeds=[v[metric] for v in cand_values])
        if baseline is not None:
            delta = stats.paired_bootstrap(metric, candidates[0], baseline, RESAMPLES)
            row = replace(row, delta=_finite(delta.point), low=_finite(delta.low),
                          high=_finite(delta.high), method=delta.method)
        evaluation.metrics.append(row)
    applicable = [g for g in spec.gates if g.tiers is None or tier in g.tiers]
    pending = [item for g in applicable
               for item in _gate_results(g, candidates, baseline, evaluation.notes, missing,
                                         evidence)]
    decided = [(r, iv, ctx) for r, iv, ctx in pending if iv is not None]
    intervals: list[Interval] = [iv for _, iv, _ in pending if iv is not None]
    levels: list[float] = []
    alpha = 0.05
    if decided:
        alpha = 1 - max(r.confidence for r, _, _ in decided)
        p_values = [stats.gate_p_value(iv, ctx[0], ctx[1], higher_is_better=ctx[2],
                                       relative_to=ctx[3])
                    for iv, (_, _, ctx) in zip(intervals, decided, strict=True)]
        levels = stats.holm_levels(p_values, alpha)
    for index, (r, _, ctx) in enumerate(decided):
        iv, level = intervals[index], levels[index]
        final = iv.at(level) if level != iv.confidence else iv
        margin, direction, higher, relative = ctx
        verdict = stats.verdict(final, margin, direction, higher_is_better=higher,
                                relative_to=relative)
        r = replace(r, verdict=verdict, low=_finite(final.low), high=_finite(final.high),
                    confidence=level)
        evaluation.gates.append(replace(r, reason=_explain(r, direction, margin, relative,
                                                            higher)))
    evaluation.gates += [r for r, iv, _ in pending if iv is None]
    if len(decided) > 1:
        evaluation.notes.append(f"Holm's correction over {len(decided)} gates: intervals are "
                                "widened so the chance of any false PASS stays at "
                                f"{alpha:.0%}")
    return evaluation
