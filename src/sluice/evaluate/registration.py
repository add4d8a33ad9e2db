"""After a tier run: register a version of each evaluated model, and promote it per the tier.

A version carries the train stage's artifact (already in the store, by hash),
the lineage of the run (commit, branch, tier, run id, stage fingerprints, the
raw data the train stage's upstream chain read with its hashes and pins, params),
its metrics and gate verdicts, and the predictions it was judged on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.errors import SluiceError
from sluice.util import identity
from sluice.workspace.project import Project
from sluice.workspace.records import read_record

if TYPE_CHECKING:
    from sluice.evaluate.gates import ModelEvaluation
    from sluice.registry.promotion import Outcome
    from sluice.registry.versions import Version


def _lineage(project: Project, stages: list[str], tier: str, run_id: str,
             where: tuple[str | None, str | None]) -> dict[str, Any]:
    from sluice.data.pins import data_lineage

    records = {s: read_record(project, s) for s in stages}
    return {
        "commit": where[0], "branch": where[1],
        "tier": tier, "run_id": run_id,
        "fingerprints": {s: r["fingerprint"] for s, r in records.items() if r},
        "inputs": {s: r.get("components", {}).get("inputs", {}) for s, r in records.items()
                   if r},
        "params": {s: r.get("components", {}).get("params", {}) for s, r in records.items()
                   if r},
        # `inputs` are what the stages themselves read (often derived files); `data` is
        # the raw data at the start of the chain, as pinned when the run began.
        "data": data_lineage(project, stages),
    }


def register_and_promote(project: Project, tier_name: str, promote_to: str | None,
                         run_id: str, evaluations: list[ModelEvaluation], actor: str | None,
                         provenance: tuple[str | None, str | None] | None = None
                         ) -> tuple[list[Version], list[Outcome | str]]:
    """Register every evaluated model; then move ``promote_to`` where the policy allows.

    ``provenance`` is (commit, branch) when they are not this checkout's (a platform's
    `sluice tier finish` works in a code snapshot without git history).
    """
    from sluice.registry.mirror import notices, open_registry
    from sluice.registry.promotion import promote
    from sluice.registry.versions import register

    db = open_registry(project)  # with the MLflow mirror following, if configured
    who = identity.actor(actor)
    where = provenance or (identity.commit(project.root), identity.branch(project.root))
    made: list[Version] = []
    moves: list[Outcome | str] = []
    for evaluation in evaluations:
        spec = project.config.models[evaluation.model]
        record = read_record(project, spec.train)
        if record is None or spec.artifact not in record["outs"]:
            moves.append(f"{evaluation.model}: no trained artifact recorded; not registered")
            continue
        artifact = record["outs"][spec.artifact]
        stages = [s for s in (spec.train, spec.evaluate) if s]
        lineage = _lineage(project, stages, tier_name, run_id, where)
        evaluated = read_record(project, spec.evaluate) if spec.evaluate else None
        predictions = next((o for o in (evaluated or {}).get("outs", {}).values()
                            if o["path"] == evaluation.candidate), None)
        if predictions is not None:
            # The predictions it was judged on: the next candidate's baseline, when the
            # test set is the same.
            lineage["predictions"] = {"path": predictions["path"],
                                      "test_set": evaluation.test_set}
        version = register(
            db, evaluation.model, artifact_hash=artifact["hash"], artifact_path=artifact["path"],
            verdict=evaluation.verdict, lineage=lineage,
            metrics={m.metric: m.candidate for m in evaluation.metrics},
            gates=[vars(g) for g in evaluation.gates], creator=who,
            predictions_hash=predictions["hash"] if predictions else None)
        made.append(version)
        if promote_to is None:
            continue
        try:
            moves.append(promote(db, project.config.spec.promotion, evaluation.model,
                                 version.version, promote_to, who,
                                 f"tier `{tier_name}` run {run_id}",
                                 where[1]))
        except SluiceError as exc:
            moves.append(f"{evaluation.model} v{version.version} not moved to "
                         f"`{promote_to}`: {exc.message}")
    moves += notices(db)
    return made, moves
