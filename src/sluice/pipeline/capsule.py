"""The stage capsule: one stage, runnable anywhere that can reach the shared store.

:func:`build_spec` describes a stage completely — its command and environment contract,
fingerprint and components, timeout and resources, the code snapshot
(:mod:`sluice.pipeline.snapshot`) and every input, by hash or as "output ``o`` of
upstream stage ``s`` of this run" (resolved when the capsule starts) — and
:func:`put_spec` stores it, with every object it names, in the shared store. A worker
runs ``sluice stage exec DIGEST`` (:func:`capsule_command`), which calls
:func:`run_capsule`: read the spec, resolve upstream references from the store,
materialise code and inputs into an empty scratch folder (every path validated,
every byte verified), build or reuse the executor's setup environment
(:mod:`sluice.pipeline.capsule_setup`), run the command through sluice's one way to
start a stage process (:func:`sluice.execute.run_one`), then store the outputs and
the run record — objects first, record last — and a pointer record that lets later
capsules of the same run find this stage's outputs. A record already complete for
the fingerprint is reported without running (capsules are idempotent).

The spec never holds a secret nor a store credential: the worker's store URL and
credentials come from its environment. Which executor, host and GPUs ran the stage
is recorded, not fingerprinted, so results are shared between local and remote runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sluice.errors import StoreError, UsageError
from sluice.pipeline.capsule_run import (
    CapsuleResult,
    CapsuleSpecError,
    pointer_key,
    put_pointer,
    resolve_output,
    run_capsule,
)
from sluice.pipeline.capsule_setup import setup_files
from sluice.pipeline.fingerprint import (
    RunContext,
    _input_path,
    glob_files,
    render_command,
    stage_components,
    stage_environment,
)
from sluice.pipeline.plan import Decision
from sluice.pipeline.snapshot import put_snapshot, read_snapshot, snapshot_entries
from sluice.store.base import Store
from sluice.store.layered import LayeredStore, copy_object, local_layer
from sluice.util.credentials import is_secret_name
from sluice.util.hashing import (
    DIR_SUFFIX,
    TreeEntry,
    hash_bytes,
    hash_manifest,
    manifest_bytes,
    manifest_from_bytes,
)
from sluice.util.safepath import check_digest
from sluice.workspace.project import Project

__all__ = ["CapsuleResult", "CapsuleSpecError", "build_spec", "capsule_command",
           "pointer_key", "put_pointer", "put_spec", "resolve_output", "run_capsule",
           "setup_files"]

SPEC_FORMAT = 1
# Stands for an upstream output's hash in the components of a spec written before the
# upstream stage ran; the capsule puts the resolved hash in its place.
UNRESOLVED = "0" * 32
# Set by the environment running sluice, never carried in a spec.
_WORKER_VARS = ("SLUICE_PYTHON",)


# ---------------------------------------------------------------------------- building


def _stage_ref(ref: str) -> tuple[str, str] | None:
    """(stage, output) of an ``inputs:`` entry ``stages.S.outs.O``."""
    parts = ref.strip().removeprefix("${").removesuffix("}").split(".")
    if len(parts) == 4 and parts[0] == "stages" and parts[2] == "outs":
        return parts[1], parts[3]
    return None


def build_spec(project: Project, stage_name: str, ctx: RunContext, run_id: str, *,
               decision: Decision | None, setup: str | None, executor: str) -> dict[str, Any]:
    """The capsule spec of ``stage_name`` (see the module docstring).

    With ``decision`` (the scheduler's, upstream settled) every input is pinned by
    hash. Without one (an export written before anything ran) each upstream output
    is a reference resolved when the capsule starts, and the fingerprint is computed
    there. Folder and glob inputs get their manifest into the local store, so
    :func:`put_spec` can send them on.
    """
    config = project.config
    stage = config.stages[stage_name]
    upstream = {i.path: UNRESOLVED for i in stage.inputs if _stage_ref(i.ref) and i.stage}
    if decision is not None:
        components, fingerprint = decision.components, decision.fingerprint
    else:
        components = stage_components(project, stage, ctx, upstream)
        fingerprint = None
    inputs: list[dict[str, Any]] = [{"path": p, "hash": components["deps"][p], "key": ["deps", p]}
                                    for p in stage.deps]
    for ref in stage.inputs:
        path = _input_path(config, stage, ref, ctx)
        producer = _stage_ref(ref.ref)
        if decision is None and ref.stage and producer is not None:
            inputs.append({"path": path, "stage": producer[0], "out": producer[1],
                           "key": ["inputs", ref.ref]})
        else:
            inputs.append({"path": path, "hash": components["inputs"][ref.ref],
                           "key": ["inputs", ref.ref]})
    for item in inputs:
        if "hash" in item and item["hash"].endswith(DIR_SUFFIX):
            _keep_manifest(project, item["path"], item["hash"])
    setup_paths = setup_files(project.root, setup)
    extra = [*components["imports"], *setup_paths,
             *([config.params_file] if config.params_file else [])]
    entries = snapshot_entries(project, [p for p in extra if (project.root / p).is_file()])
    snapshot = hash_manifest(entries)
    local_layer(project.store).add_bytes(manifest_bytes(entries), snapshot)
    env = {k: v for k, v in stage_environment(config, stage, ctx, run_id, here=False).items()
           if k not in _WORKER_VARS and not is_secret_name(k)}
    resources = stage.spec.resources
    return {
        "format": SPEC_FORMAT,
        "stage": stage_name,
        "run_id": run_id,
        "executor": executor,
        "command": render_command(config, stage, ctx),
        "env": env,
        # `uses: mlflow-project|metaflow`: the worker adds its defaults (sluice.config.uses)
        **({"uses": stage.spec.uses} if stage.spec.uses else {}),
        "secret_names": list(config.secret_names),
        "outs": dict(stage.outs),
        "timeout": stage.spec.timeout,
        "resources": {"cpus": resources.cpus, "gpus": resources.gpus,
                      "memory": resources.memory},
        "fingerprint": fingerprint,
        "components": components,
        "snapshot": snapshot,
        "inputs": inputs,
        "setup": setup,
        "setup_files": setup_paths,
    }


def _entries_on_disk(project: Project, path: str) -> list[TreeEntry]:
    """The manifest entries of a folder dep (relative to it) or a glob dep (to the root)."""
    from sluice.config.base import is_glob

    if is_glob(path):
        return [TreeEntry(rel, project.hasher.file(project.root / rel, st), st.st_size)
                for rel, st in glob_files(project.root, path)]
    return project.hasher.tree_entries(project.root / path)


def _keep_manifest(project: Project, path: str, digest: str) -> None:
    local = local_layer(project.store)
    if local.has(digest):
        return
    entries = _entries_on_disk(project, path)
    if hash_manifest(entries) != digest:
        raise UsageError(f"`{path}` changed since its stage was fingerprinted",
                         hint="run again once nothing is writing to it")
    local.add_bytes(manifest_bytes(entries), digest)


def shared_layer(store: Store) -> Store:
    """The store workers read: the shared layer of a layered store, else the store itself."""
    return store.shared if isinstance(store, LayeredStore) else store


def _send(project: Project, target: Store, digest: str, source: Path) -> None:
    """Put the object ``digest`` into ``target``: from the local store, else from ``source``."""
    local = local_layer(project.store)
    if local.has(digest) and local is not target:
        copy_object(local, target, digest)
        return
    try:
        actual = target.add_file(source, digest)
    except StoreError:
        actual = None
    if actual != digest:
        raise StoreError(f"the content {digest[:16]} of `{source.relative_to(project.root)}` "
                         "is in no store and not on disk any more",
                         hint="run again once nothing is writing to it")


def put_spec(project: Project, spec: dict[str, Any]) -> str:
    """Store ``spec`` and every object it names in the shared store; the spec's digest.

    Objects go first (files before folder manifests), the spec last: a stored spec
    always finds everything it names. A read-only run (a pull-request job) must never
    write the shared store, and the capsule's results would go there too: refused.
    """
    if isinstance(project.store, LayeredStore) and project.store.read_only:
        raise UsageError(
            "this run only reads the shared store ($SLUICE_CACHE_READ_ONLY is set, as in "
            "pull-request CI jobs), but a stage on a remote executor stores its spec and "
            "inputs there, and its worker writes the results there",
            hint="run remote stages in a merge or schedule tier (their jobs may write the "
                 "store), give this job write credentials and unset SLUICE_CACHE_READ_ONLY, "
                 "or run the stage locally with `executor: local`")
    target = shared_layer(project.store)
    local = local_layer(project.store)
    put_snapshot(project, target, read_snapshot(local, spec["snapshot"]))
    files: dict[str, Path] = {}
    manifests: list[str] = []
    for item in spec["inputs"]:
        digest = item.get("hash")
        if digest is None:
            continue  # an upstream reference: its stage's capsule stores it
        root = project.root / item["path"]
        if not digest.endswith(DIR_SUFFIX):
            files.setdefault(digest, root)
            continue
        manifests.append(digest)
        from sluice.config.base import is_glob

        base = project.root if is_glob(item["path"]) else root
        for entry in manifest_from_bytes(local.read_bytes(digest), digest):
            files.setdefault(entry.hash, base / entry.path)
    missing = set(target.missing([*files, *manifests]))
    for digest, source in files.items():
        if digest in missing:
            _send(project, target, digest, source)
    for digest in manifests:
        if digest in missing:
            target.add_bytes(local.read_bytes(digest), digest)
    data = spec_bytes(spec)
    digest = hash_bytes(data)
    target.add_bytes(data, digest)
    return digest


def spec_bytes(spec: dict[str, Any]) -> bytes:
    return json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()


def capsule_command(spec_digest: str) -> str:
    """What a worker runs; the store URL comes from ``$SLUICE_CACHE_URL`` there."""
    return f"sluice stage exec {check_digest(spec_digest, 'a capsule spec')}"
