"""What ``sluice gc`` must keep: every object and run record something still references.

The roots, each read from where it is recorded:

- the registry: every version's artifact and stored predictions, and the run records
  of its lineage's fingerprints (a baseline is re-evaluated from them); the versions
  every alias ever held (``alias_events``) are among them, so rollback always works;
- ``sluice.lock`` in the workspace, and at each revision asked for (``--rev``,
  ``--all-branches``): what ``sluice data checkout`` at that revision restores;
- the stage records of this checkout (``.sluice/stages``): the outputs in the workspace;
- the last N runs of each tier in the ledger: the fingerprints of the stages they ran,
  and of those they restored (from the run's own file in ``.sluice/runs``).

Anything read from the database, a record or a lock file is only ever compared with
names listed from the store; a value that is not a sluice digest names nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sluice.config.lockfile import LOCK_FILE, XXH3, parse_lock
from sluice.errors import UsageError
from sluice.pipeline.tier_manifest import RUN_ID
from sluice.util.fs import read_json
from sluice.workspace.project import Project

DIGEST = re.compile(r"[0-9a-f]{32}(?:\.dir)?")


@dataclass
class Roots:
    """Digests and fingerprints to keep, each counted by why."""

    objects: set[str] = field(default_factory=set)
    fingerprints: set[str] = field(default_factory=set)
    run_ids: set[str] = field(default_factory=set)  # the kept runs
    old_run_ids: set[str] = field(default_factory=set)  # runs in the ledger not kept
    oldest_kept: float | None = None  # when the oldest kept run started
    revisions: list[str] = field(default_factory=list)  # commits whose lock was read
    why: Counter[str] = field(default_factory=Counter)

    def keep_object(self, digest: object, why: str) -> None:
        if isinstance(digest, str) and DIGEST.fullmatch(digest):
            self.objects.add(digest)
            self.why[why] += 1

    def keep_fingerprint(self, fingerprint: object, why: str) -> None:
        if isinstance(fingerprint, str) and DIGEST.fullmatch(fingerprint):
            self.fingerprints.add(fingerprint)
            self.why[why] += 1


def find_roots(project: Project, *, revs: list[str], all_branches: bool,
               keep_runs: int) -> Roots:
    """Everything ``sluice gc`` keeps (see the module docstring)."""
    from sluice.db.read import open_project_reader

    if keep_runs < 0:
        raise UsageError(f"--keep-runs must be 0 or more, not {keep_runs}",
                         hint="--keep-runs 10 keeps the last ten runs of each tier")
    roots = Roots()
    reader = open_project_reader(project)
    _registry(reader, roots)
    _ledger(project, reader, roots, keep_runs)
    _stage_records(project, roots)
    _locks(project, roots, revs, all_branches)
    return roots


def _registry(reader: Any, roots: Roots) -> None:
    import json

    for row in reader.rows("SELECT model, version, artifact_hash, predictions_hash, lineage "
                           "FROM model_versions"):
        roots.keep_object(row["artifact_hash"], "registry versions")
        roots.keep_object(row["predictions_hash"], "registry versions")
        try:
            lineage = json.loads(row["lineage"] or "{}")
        except ValueError:
            lineage = {}
        fingerprints = lineage.get("fingerprints") if isinstance(lineage, dict) else None
        for fingerprint in (fingerprints or {}).values() if isinstance(fingerprints, dict) \
                else ():
            roots.keep_fingerprint(fingerprint, "registry lineage")
    # Every version an alias ever held is a version above; counted apart so the report
    # shows the history is covered even where versions are one day pruned.
    held = reader.rows("SELECT DISTINCT v.artifact_hash AS h FROM alias_events e "
                       "JOIN model_versions v ON v.model = e.model "
                       "AND (v.version = e.to_version OR v.version = e.from_version)")
    for row in held:
        roots.keep_object(row["h"], "alias history")


def _ledger(project: Project, reader: Any, roots: Roots, keep_runs: int) -> None:
    rows = reader.rows("SELECT run_id, tier, started_at FROM runs "
                       "ORDER BY started_at DESC, run_id DESC")
    kept: Counter[str] = Counter()
    for row in rows:
        if kept[row["tier"]] < keep_runs:
            kept[row["tier"]] += 1
            roots.run_ids.add(row["run_id"])
            started = float(row["started_at"])
            roots.oldest_kept = started if roots.oldest_kept is None \
                else min(roots.oldest_kept, started)
        else:
            roots.old_run_ids.add(row["run_id"])
    if not roots.run_ids:
        return
    for row in reader.rows("SELECT run_id, fingerprint FROM executions "
                           "WHERE fingerprint IS NOT NULL"):
        if row["run_id"] in roots.run_ids:
            roots.keep_fingerprint(row["fingerprint"], "kept runs")
    for run_id in roots.run_ids:
        if not RUN_ID.fullmatch(run_id):
            continue  # from the database: never let it name a path
        result = read_json(project.state_dir / "runs" / f"{run_id}.json")
        stages = result.get("stages") if isinstance(result, dict) else None
        for stage in stages if isinstance(stages, list) else ():
            if isinstance(stage, dict):  # cached stages too: restored from these records
                roots.keep_fingerprint(stage.get("fingerprint"), "kept runs")


def _stage_records(project: Project, roots: Roots) -> None:
    folder = project.state_dir / "stages"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        record = read_json(path)
        if not isinstance(record, dict):
            continue
        roots.keep_fingerprint(record.get("fingerprint"), "workspace outputs")
        for digest in out_hashes(record.get("outs")):
            roots.keep_object(digest, "workspace outputs")


def out_hashes(outs: object) -> list[str]:
    """The digests a record's ``outs`` (name → {path, hash}) names; nothing else."""
    found = []
    for item in outs.values() if isinstance(outs, dict) else ():
        digest = item.get("hash") if isinstance(item, dict) else None
        if isinstance(digest, str) and DIGEST.fullmatch(digest):
            found.append(digest)
    return found


def _locks(project: Project, roots: Roots, revs: list[str], all_branches: bool) -> None:
    from sluice.data.status import lock_pins

    for pin in lock_pins(project.root).values():
        if pin.algorithm == XXH3:
            roots.keep_object(pin.hash, "sluice.lock (workspace)")
    if not revs and not all_branches:
        return
    from sluice.util.git import Repo, git

    repo = Repo.open(project.root)
    try:
        commits = {repo.resolve(rev): rev for rev in revs}
        if all_branches:
            out = git(project.root, "for-each-ref", "--format=%(objectname) %(refname:short)",
                      "refs/heads", "refs/remotes")
            for line in out.decode().splitlines():
                commit, _, name = line.partition(" ")
                if commit and name and not name.endswith("/HEAD"):
                    commits.setdefault(commit, name)
        for commit, name in sorted(commits.items(), key=lambda c: c[1]):
            roots.revisions.append(f"{name} ({commit[:12]})")
            text = repo.read(commit, LOCK_FILE)
            pins = parse_lock(text.decode("utf-8") if text is not None else None)
            for pin in pins.values():
                if pin.algorithm == XXH3:
                    roots.keep_object(pin.hash, "sluice.lock at revisions")
    finally:
        repo.close()
