"""The evidence a verdict may use: files whose hash the run can account for.

A gate compares the candidate's predictions with the baseline's. Neither is
trusted because it happens to lie in the workspace: another branch, an earlier
run or a failed stage may have left other bytes there. Each file a verdict reads
is located first (:func:`Locator.output`): the stage that writes it, the
fingerprint that stage has *now* under the run's tier context (the one the run
settled, or, for a stage the tier did not run, the one a plan computes from the
outputs its upstream has in the workspace or any readable store), and the
output hash recorded for that fingerprint (the checkout's stage record or the
run cache, local or shared). Only then are its bytes fetched
(:func:`materialize`): the workspace file when its hash is the recorded one,
otherwise a copy from the store in a scratch folder. A file no stage writes (a
committed baseline) is evidence as it is, by its hash.

When no store has the output, the :class:`Evidence` carries the reason instead
of a hash, and the gates that need it are INCONCLUSIVE with that reason.
"""

from __future__ import annotations

import posixpath
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import EvidenceMissing, SluiceError
from sluice.util.safepath import check_digest
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from sluice.config.schema import ModelSpec
    from sluice.evaluate.gates import ModelEvaluation
    from sluice.pipeline.base import RunResult
    from sluice.pipeline.fingerprint import RunContext
    from sluice.pipeline.plan import StagePlan
    from sluice.stats.predictions import Predictions

ADVICE = "run the baseline stage or add it to the tier"


@dataclass(frozen=True)
class Evidence:
    """One file a verdict uses, or why it cannot be had."""

    path: str  # where the project keeps it (repository-relative)
    hash: str | None = None  # xxh3 of the bytes the verdict uses; None: missing
    fingerprint: str | None = None  # of the stage run that wrote those bytes
    stage: str | None = None  # the stage that writes `path` (None: a committed file)
    source: str = ""  # "this run", "store", "file", "registry churn@production (version 3)"
    reason: str = ""  # why it is missing

    @property
    def found(self) -> bool:
        return self.hash is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def short(digest: str | None) -> str:
    return "–" if digest is None else digest[:12]


class Locator:
    """Finds the evidence for output paths of one run (plans of unrun stages are cached)."""

    def __init__(self, project: Project, result: RunResult, context: RunContext) -> None:
        self.project = project
        self.context = context
        self.settled = {o.stage: o for o in result.outcomes}
        self._plans: dict[str, dict[str, StagePlan] | SluiceError] = {}

    def producer(self, path: str) -> tuple[str, str] | None:
        """(stage, output name) of the stage that writes ``path``, if one does."""
        wanted = posixpath.normpath(path.strip())
        for stage in self.project.config.stages.values():
            for out, written in stage.outs.items():
                if written == wanted:
                    return stage.name, out
        return None

    def output(self, path: str, what: str) -> Evidence:
        """The evidence for ``path``; ``what`` names it in reasons ("baseline predictions")."""
        found = self.producer(path)
        if found is None:
            return self._committed(path, what)
        stage, out = found
        advice = ADVICE if what.startswith("baseline") else f"rerun it: `sluice run {stage}`"
        outcome = self.settled.get(stage)
        fingerprint: str | None = None
        if outcome is not None and outcome.status in ("ran", "cached") and outcome.fingerprint:
            fingerprint, source = outcome.fingerprint, "this run"
        else:
            fingerprint, why = self._planned(stage)
            source = "store"
        if fingerprint is None:
            return Evidence(path, stage=stage, reason=f"{what} `{path}` (stage `{stage}`): "
                                                      f"{why}; {advice}")
        record = self._record(stage, fingerprint)
        if record is None or out not in record.get("outs", {}):
            return Evidence(path, fingerprint=fingerprint, stage=stage, reason=(
                f"{what} `{path}` for fingerprint {short(fingerprint)} (stage `{stage}`) are "
                f"in no readable store; {advice}"))
        return Evidence(path, str(record["outs"][out]["hash"]), fingerprint, stage, source)

    def _committed(self, path: str, what: str) -> Evidence:
        full = self.project.root / path
        try:
            return Evidence(path, self.project.hasher.file(full), source="file")
        except OSError:
            return Evidence(path, reason=f"{what} `{path}` do not exist, and no stage writes "
                                         "them")

    def _record(self, stage: str, fingerprint: str) -> dict[str, Any] | None:
        """The outputs recorded for ``fingerprint``: this checkout's record, else the stores'."""
        from sluice.workspace.records import read_record

        local = read_record(self.project, stage)
        if local is not None and local["fingerprint"] == fingerprint:
            return local
        try:
            return self.project.store.get_run(fingerprint)
        except SluiceError:
            return None  # an unreachable shared store holds nothing for this run

    def _planned(self, stage: str) -> tuple[str | None, str]:
        """The fingerprint ``stage`` has now under the run's context, or why it has none.

        Planning computes it from the outputs its upstream has here or in a store
        (the run cache), without running or restoring anything.
        """
        from sluice.pipeline.plan import make_plan

        plans = self._plans.get(stage)
        if plans is None:
            try:
                plans = {p.stage: p for p in make_plan(self.project, [stage], self.context)}
            except SluiceError as exc:
                plans = exc
            self._plans[stage] = plans
        if isinstance(plans, SluiceError):
            return None, f"its fingerprint cannot be computed ({plans.message})"
        plan = plans[stage]
        if plan.fingerprint is not None:
            return plan.fingerprint, ""
        chain = set(self.project.graph.with_upstream([stage]))
        blocked = next((p for p in plans.values() if p.stage in chain and p.action == "run"),
                       plan)
        if blocked.fingerprint is None:
            return None, f"its fingerprint cannot be computed: {'; '.join(blocked.reasons)}"
        return None, (f"its fingerprint cannot be computed: its upstream `{blocked.stage}` for "
                      f"fingerprint {short(blocked.fingerprint)} is in no readable store")


def materialize(project: Project, evidence: Evidence, scratch: Path) -> Path:
    """A file holding exactly ``evidence``'s bytes: the workspace's, or a copy from the store.

    Raises SluiceError (with the reason) when neither has them.
    """
    from sluice.util.hashing import DIR_SUFFIX

    if evidence.hash is None:
        raise EvidenceMissing(evidence.reason)
    # The hash came from a run record or the registry: a store is trusted for
    # availability, never for names (a "hash" like `../x` would name another file).
    check_digest(evidence.hash, f"the record of `{evidence.path}`")
    full = project.root / evidence.path
    try:
        if full.is_file() and project.hasher.file(full) == evidence.hash:
            return full
    except OSError:
        pass  # unreadable here: fetch the recorded bytes instead
    if evidence.hash.endswith(DIR_SUFFIX):
        raise EvidenceMissing(f"`{evidence.path}` is a folder output; a verdict reads a file")
    # The workspace holds other bytes (another branch's, an earlier run's) or none.
    copy = scratch / f"{evidence.hash}{Path(evidence.path).suffix}"
    if not copy.is_file():
        try:
            project.store.checkout_file(evidence.hash, copy)
        except SluiceError as exc:
            raise EvidenceMissing(f"`{evidence.path}` ({short(evidence.hash)}) cannot be "
                                  f"restored from the store: {exc.message}") from None
    return copy


def seed_predictions(project: Project, result: RunResult, first: Path, stage: str, out: str,
                     scratch: Path) -> tuple[list[Predictions], list[str]]:
    """Predictions of seed 0 (``first``, verified) and of every later seed (from the store),
    with the hashes of the later seeds' files."""
    from sluice.evaluate.predictions import read_predictions

    found, hashes = [read_predictions(first)], []
    for outcome in result.outcomes:
        name, _, seed = outcome.stage.partition("@seed")
        if name != stage or not seed:
            continue
        record = None if outcome.fingerprint is None else project.store.get_run(
            outcome.fingerprint)
        if record is None or out not in record.get("outs", {}):
            # Fewer seeds than the tier trains would narrow the interval on no evidence.
            raise EvidenceMissing(f"seed {seed} of `{stage}` ({outcome.status}) has no "
                                  "recorded predictions; every seed the tier runs must have "
                                  "them")
        copy = scratch / f"seed{seed}{first.suffix}"
        project.store.checkout_file(check_digest(record["outs"][out]["hash"]), copy)
        found.append(read_predictions(copy))
        hashes.append(str(record["outs"][out]["hash"]))
    return found, hashes


def baseline_predictions(project: Project, name: str, spec: ModelSpec, locator: Locator,
                         candidate: Predictions, scratch: Path, evaluation: ModelEvaluation
                         ) -> tuple[Predictions | None, Evidence | None]:
    """The baseline's predictions and their evidence (or why there are none)."""
    from sluice.evaluate.predictions import read_predictions

    if spec.baseline is None:
        return None, None
    if spec.baseline.alias is not None:
        return _registry_baseline(project, name, spec.baseline.alias, candidate, scratch,
                                  evaluation)
    if spec.baseline.predictions is None:
        return None, None
    found = locator.output(spec.baseline.predictions, "baseline predictions")
    try:
        path = materialize(project, found, scratch)
    except SluiceError as exc:
        return None, replace(found, hash=None, reason=exc.message)
    evaluation.baseline = evaluation.baseline_file = spec.baseline.predictions
    return read_predictions(path), found


def _registry_baseline(project: Project, model: str, alias: str, candidate: Predictions,
                       scratch: Path, evaluation: ModelEvaluation
                       ) -> tuple[Predictions | None, Evidence]:
    """The predictions stored with the version behind ``alias``, if on the same test set."""
    from sluice.db import open_project_database
    from sluice.evaluate.predictions import read_predictions
    from sluice.registry.versions import get_version
    from sluice.util.hashing import hash_file_uncached

    db = open_project_database(project)
    where = f"{model}@{alias}"
    try:
        version = get_version(db, model, alias=alias)
    except SluiceError:
        return None, Evidence(where, reason=f"no version of `{model}` holds `{alias}` yet (the "
                                            "first model): no baseline version to compare with; "
                                            "see docs/gates.md on bootstrapping")
    evaluation.baseline = f"{where} (version {version.version})"
    stored = version.lineage.get("predictions")
    fingerprint = version.lineage.get("fingerprints", {}).get(
        project.config.models[model].evaluate or "")
    found = Evidence(str(stored.get("path", "")) if isinstance(stored, dict) else where,
                     version.predictions_hash, fingerprint, None,
                     f"registry {evaluation.baseline}")
    if not version.predictions_hash or not isinstance(stored, dict):
        return None, Evidence(where, reason=f"version {version.version} of `{model}` has no "
                                            "stored predictions")
    if stored.get("test_set") != test_set_id(candidate):
        evaluation.notes.append(f"the test set changed since version {version.version} was "
                                "evaluated: its artifact was re-evaluated on the new one")
        try:
            path = reevaluate_baseline(project, model, version, scratch, evaluation)
            baseline = None if path is None else read_predictions(path)
        except SluiceError as exc:  # the artifact is corrupt or gone, the output unreadable
            return None, Evidence(where, reason=f"re-evaluating version {version.version}: "
                                                f"{exc.message}")
        if path is None or baseline is None:
            return None, Evidence(where, reason=f"re-evaluating version {version.version} "
                                                "on the new test set failed")
        if test_set_id(baseline) != test_set_id(candidate):
            return None, Evidence(where, reason=f"version {version.version} re-evaluated on a "
                                                "different test set than the candidate's")
        return baseline, Evidence(
            found.path, hash_file_uncached(path), None, None,
            f"version {version.version}'s artifact ({version.artifact_hash[:12]}) re-evaluated")
    try:
        return read_predictions(materialize(project, found, scratch)), found
    except SluiceError as exc:
        return None, Evidence(where, reason=exc.message)


def predictions_output(project: Project, spec: ModelSpec) -> str | None:
    assert spec.evaluate is not None
    outs = project.config.stages[spec.evaluate].outs
    if spec.predictions:
        return spec.predictions
    return "predictions" if "predictions" in outs else None


def test_set_id(preds: Predictions) -> str:
    """Identifies a test set: its example ids (or positions) and true labels."""
    from sluice.util.hashing import hash_bytes

    ids = preds.ids if preds.ids is not None else range(preds.n)
    text = "\n".join(f"{i}\t{y}" for i, y in zip(ids, preds.y_true.tolist(), strict=True))
    return hash_bytes(text.encode())


def reevaluate_baseline(project: Project, model: str, version: Any, scratch: Path,
                        evaluation: ModelEvaluation) -> Path | None:
    """Run the model's evaluate stage on the baseline's artifact instead of the candidate's;
    returns the predictions file it wrote."""
    from dataclasses import replace

    from sluice.execute import run_one
    from sluice.execute.base import Job
    from sluice.pipeline.fingerprint import RunContext, render_command, stage_environment
    from sluice.registry.pull import pull_artifact

    spec = project.config.models[model]
    assert spec.evaluate is not None
    evaluate = project.config.stages[spec.evaluate]
    artifact = project.config.stages[spec.train].outs[spec.artifact]
    folder = scratch.relative_to(project.root)
    swapped = {artifact: str(folder / ("baseline-artifact" + Path(artifact).suffix))}
    pull_artifact(project.store, version.artifact_hash, project.root / swapped[artifact])
    outs = {name: str(folder / f"baseline-{name}{Path(path).suffix}")
            for name, path in evaluate.outs.items()}
    swapped.update({evaluate.outs[name]: path for name, path in outs.items()})
    # The stage's own environment contract, with its outputs moved to the scratch folder.
    env = stage_environment(project.config, replace(evaluate, outs=outs), RunContext(),
                            "baseline")
    log = project.log_path(f"{spec.evaluate}-baseline")
    # Like every stage: the log masked as it is written, the process group stopped on a
    # timeout or when sluice dies.
    done = run_one(Job(f"{spec.evaluate}-baseline",
                       render_command(project.config, evaluate, RunContext(), swapped),
                       project.root, env, log, evaluate.spec.timeout,
                       gpus=evaluate.spec.resources.gpus,
                       secret_names=project.config.secret_names))
    name = predictions_output(project, spec)
    if not done.ok or name is None or not (project.root / outs[name]).exists():
        evaluation.notes.append(f"re-evaluating the baseline failed (exit {done.returncode}; "
                                f"see {log.relative_to(project.root)})")
        return None
    return project.root / outs[name]
