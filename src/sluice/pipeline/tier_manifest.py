"""The tier-run manifest: what ``sluice tier start`` decided, for the steps that follow.

A tier exported to a platform (Argo, KFP, SageMaker, Azure ML, Databricks) runs as
three kinds of step: ``sluice tier start`` plans the tier in a checkout and writes
this manifest to the shared store; one ``sluice stage exec --run ID --stage NAME``
step per stage runs that stage's capsule (:mod:`sluice.pipeline.capsule`); and
``sluice tier finish`` reads the manifest back and ends the run like a local one.

The manifest lives in the store's run cache under :func:`manifest_key` (a hash of the
run id, beside the capsule pointer records), so any store serves it with no new
operation. It records every stage of the pipeline with one action: ``run`` (a capsule
spec digest), ``cached`` (the fingerprint already complete in the shared store, and
the spec), ``skip`` (the tier does not select it) or ``budget`` (skipped by the
tier's ``on_budget: skip-expensive``). Everything read back is validated — run id,
stage names against ``sluice.yaml``, digests — before anything is written.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from sluice.errors import CorruptObject, UsageError
from sluice.store.base import Store
from sluice.util.hashing import hash_bytes
from sluice.util.safepath import check_digest

MANIFEST_FORMAT = 1
_DOMAIN = "sluice-tier-run"
# Platform run ids (Argo/KFP uuids, SageMaker execution ids, Databricks run numbers)
# fit this, and so does `new_run_id()`; it is also safe in file names (run locks).
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
Action = Literal["run", "cached", "skip", "budget"]
ACTIONS: tuple[Action, ...] = ("run", "cached", "skip", "budget")


class ManifestError(UsageError):
    """A tier-run manifest that is missing, malformed or does not fit the project."""


def check_run_id(run_id: object) -> str:
    """``run_id`` when it is a valid run id; else a clear error."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise UsageError(f"`{run_id}` is not a valid run id",
                         hint="use 1-128 letters, digits, `_`, `.` or `-`, starting with a "
                              "letter or digit (the platform's run id, e.g. "
                              "{{workflow.uid}} on Argo)")
    return run_id


def manifest_key(run_id: str) -> str:
    """The run-cache key of the manifest of ``run_id``."""
    return hash_bytes(f"{_DOMAIN}\0{check_run_id(run_id)}".encode())


@dataclass(frozen=True)
class StageEntry:
    """What the run does with one stage of the pipeline."""

    action: Action
    kind: str
    spec: str | None = None  # the capsule spec's digest (run and cached)
    fingerprint: str | None = None  # cached: complete in the shared store at start
    reason: str = ""
    gated: bool = False  # expensive: waits for every check of the run to succeed


@dataclass
class TierManifest:
    run_id: str
    tier: str
    commit: str | None
    branch: str | None
    version: str  # the sluice that started the run; every step must be the same
    snapshot: str  # the code snapshot's folder manifest
    stages: dict[str, StageEntry]
    plan: list[dict[str, Any]]  # the tier plan's StagePlan rows, in run order
    targets: list[str] | None = None
    samples: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    actor: str | None = None
    created: float = field(default_factory=time.time)

    @property
    def checks(self) -> list[str]:
        return [n for n, e in self.stages.items() if e.kind == "check" and e.spec]

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value.update(manifest=_DOMAIN, format=MANIFEST_FORMAT)
        value["stages"] = {n: {k: v for k, v in asdict(e).items() if v not in (None, "", False)}
                           for n, e in self.stages.items()}
        return value


def put_manifest(store: Store, manifest: TierManifest) -> None:
    store.put_run(manifest_key(manifest.run_id), manifest.to_json())


def _bad(run_id: str, problem: str) -> ManifestError:
    return ManifestError(f"the tier-run manifest of run {run_id} {problem}",
                         hint="start the run again with a new run id (`sluice tier start`); "
                              "a manifest is only ever written by `sluice tier start`")


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def read_manifest(store: Store, run_id: str, stage_names: list[str] | None = None
                  ) -> TierManifest:
    """The manifest of ``run_id`` from ``store``, validated (stages against ``stage_names``)."""
    data = store.get_run(manifest_key(run_id))
    if data is None:
        raise ManifestError(
            f"the store {store.url} holds no tier run {run_id}",
            hint="run `sluice tier start --tier T --run-id ID` first, against the same store "
                 "(SLUICE_CACHE_URL); if it was refused (budget, bad config), its log says why")
    return parse_manifest(data, run_id, stage_names)


def parse_manifest(data: object, run_id: str, stage_names: list[str] | None = None
                   ) -> TierManifest:
    """Check every field of a manifest read from a store (trusted for availability only)."""
    if not isinstance(data, dict) or data.get("manifest") != _DOMAIN:
        raise _bad(run_id, "is not a tier-run manifest")
    if data.get("format") != MANIFEST_FORMAT:
        raise _bad(run_id, f"has an unknown format {data.get('format')!r}")
    if data.get("run_id") != run_id:
        raise _bad(run_id, f"names another run ({data.get('run_id')!r})")
    for key in ("tier", "version", "snapshot"):
        if not isinstance(data.get(key), str):
            raise _bad(run_id, f"lacks `{key}`")
    for key in ("commit", "branch", "actor"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _bad(run_id, f"has a malformed `{key}`")
    if data.get("commit") is not None and not re.fullmatch(r"[0-9a-f]{7,64}", data["commit"]):
        raise _bad(run_id, f"has a malformed commit {data['commit']!r}")
    _digest(run_id, data["snapshot"], "the code snapshot")
    if not isinstance(data.get("created"), int | float):
        raise _bad(run_id, "lacks `created`")
    for key in ("samples", "notes", "warnings"):
        if not isinstance(data.get(key), list):
            raise _bad(run_id, f"lacks `{key}`")
    if not all(_strings(s) and len(s) == 2 for s in data["samples"]) or \
            not _strings(data["notes"]) or not _strings(data["warnings"]):
        raise _bad(run_id, "has malformed samples, notes or warnings")
    if data.get("targets") is not None and not _strings(data["targets"]):
        raise _bad(run_id, "has malformed `targets`")
    stages = data.get("stages")
    if not isinstance(stages, dict):
        raise _bad(run_id, "lacks `stages`")
    known = set(stage_names) if stage_names is not None else None
    entries = {}
    for name, raw in stages.items():
        if known is not None and name not in known:
            raise _bad(run_id, f"names a stage `{name}` that sluice.yaml does not have")
        entries[name] = _entry(run_id, name, raw)
    if known is not None and set(entries) != known:
        missing = ", ".join(sorted(known - set(entries)))
        raise _bad(run_id, f"lacks stage(s) {missing} of sluice.yaml")
    plan = data.get("plan")
    if not isinstance(plan, list) or not all(_plan_row(p, entries) for p in plan):
        raise _bad(run_id, "has a malformed `plan`")
    return TierManifest(
        run_id, data["tier"], data.get("commit"), data.get("branch"), data["version"],
        data["snapshot"], entries, plan, data.get("targets"), data["samples"], data["notes"],
        data["warnings"], data.get("actor"), float(data["created"]))


def _plan_row(row: object, entries: dict[str, StageEntry]) -> bool:
    """A row of the tier plan (a StagePlan) with the right keys and types."""
    rows = ("stage", "kind", "action", "reasons", "fingerprint", "last_wall_s")
    if not isinstance(row, dict) or set(row) != set(rows):
        return False
    fingerprint, wall = row["fingerprint"], row["last_wall_s"]
    return row["stage"] in entries and isinstance(row["kind"], str) and \
        row["action"] in ("run", "restore", "up-to-date") and _strings(row["reasons"]) and \
        (fingerprint is None or (isinstance(fingerprint, str) and
                                 re.fullmatch(r"[0-9a-f]{32}", fingerprint) is not None)) and \
        (wall is None or isinstance(wall, int | float))


def _digest(run_id: str, value: object, what: str) -> str:
    try:
        return check_digest(value, what)
    except CorruptObject:
        raise _bad(run_id, f"names {what} as {value!r}, which is not a sluice content "
                           "hash") from None


def _entry(run_id: str, name: str, raw: object) -> StageEntry:
    if not isinstance(raw, dict) or raw.get("action") not in ACTIONS or \
            not isinstance(raw.get("kind"), str):
        raise _bad(run_id, f"has a malformed entry for stage `{name}`")
    action: Action = raw["action"]
    spec, fingerprint = raw.get("spec"), raw.get("fingerprint")
    if action in ("run", "cached"):
        spec = _digest(run_id, spec, f"the capsule spec of stage `{name}`")
    elif spec is not None:
        raise _bad(run_id, f"gives stage `{name}` ({action}) a spec")
    if action == "cached":
        fingerprint = _digest(run_id, fingerprint, f"the fingerprint of stage `{name}`")
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or not isinstance(raw.get("gated", False), bool):
        raise _bad(run_id, f"has a malformed entry for stage `{name}`")
    return StageEntry(action, raw["kind"], spec, fingerprint, reason, raw.get("gated", False))


EXPORT_VERSION_ENV = "SLUICE_EXPORT_VERSION"  # set on every step by `sluice export`


def check_export_version(running: str) -> None:
    """Refuse a step whose image runs another sluice than the one that wrote the export.

    The manifest's version is the one `tier start` ran with, which is the image's own:
    only the version the exported file carries in its steps' environment can catch
    an image that is not the one the export was written for.
    """
    import os

    exported = os.environ.get(EXPORT_VERSION_ENV)
    if exported and exported != running:
        raise UsageError(
            f"this pipeline was exported by sluice {exported}, but the step's image runs "
            f"sluice {running}",
            hint=f"use an image with sluice-ml=={exported}, or export the pipeline again "
                 f"with sluice {running} (`sluice export ... --check FILE` says what changed)")


def check_version(manifest: TierManifest, running: str) -> None:
    """Refuse a step whose sluice differs from the one that started the run."""
    check_export_version(running)
    if manifest.version != running:
        raise UsageError(
            f"tier run {manifest.run_id} was started by sluice {manifest.version}, but this "
            f"step runs sluice {running}: a step must run the same sluice, or fingerprints, "
            "specs and verdicts could differ",
            hint=f"run the step in an image with sluice-ml=={manifest.version} (the one "
                 "`sluice export` pinned), or export again with this sluice and start a new "
                 "run")


# ---------------------------------------------------------------------------- one step


def run_step(store: Store, run_id: str, stage: str, *, version: str, scratch: Path,
             cache_dir: Path, log: IO[str] | None = None) -> tuple[int, dict[str, Any]]:
    """``sluice stage exec --run RUN_ID --stage NAME``: (exit code, the result line).

    A stage the run does not select, already cached, or skipped for the budget ends at
    once (exit 0). An expensive stage whose run has a check without a result is gated
    (exit 1): the gate holds even where a platform would start the step anyway.
    Otherwise the stage's capsule runs (:func:`sluice.pipeline.capsule.run_capsule`).
    """
    from sluice.pipeline.capsule_run import pointer_key, run_capsule

    manifest = read_manifest(store, check_run_id(run_id))
    check_version(manifest, version)
    entry = manifest.stages.get(stage)
    if entry is None:
        known = ", ".join(manifest.stages)
        raise UsageError(f"tier run {run_id} has no stage `{stage}`",
                         hint=f"its stages: {known}")
    line: dict[str, Any] = {"run_id": run_id, "stage": stage, "action": entry.action}
    if entry.action != "run":
        why = {"skip": "not selected by the tier", "budget": entry.reason,
               "cached": "already in the store's run cache"}[entry.action]
        return 0, {**line, "ok": True, "ran": False, "reason": why,
                   "fingerprint": entry.fingerprint}
    if entry.gated:
        missing = [c for c in manifest.checks if store.get_run(pointer_key(run_id, c)) is None]
        if missing:
            return 1, {**line, "ok": False, "ran": False,
                       "reason": f"gated: check `{missing[0]}` has no result in this run "
                                 "(it failed or has not run); nothing expensive starts"}
    assert entry.spec is not None
    result = run_capsule(store, entry.spec, scratch=scratch, cache_dir=cache_dir, log=log)
    return (0 if result.ok else 1), {**line, **result.to_json(), "ran": not result.cached}
