"""Running a stage capsule on a worker: ``sluice stage exec SPEC``.

See :mod:`sluice.pipeline.capsule` for the spec.

From a spec digest and a store: read and check the spec, resolve upstream references
through pointer records, recompute the fingerprint, report an existing complete
record without running, else materialise the code snapshot and inputs into an empty
scratch folder (paths validated, bytes verified), prepare the setup environment, run
the command through :func:`sluice.execute.run_one` (its process group, timeout and
log masking), and store the outputs, then the run record, then the pointer record.
Nothing here reads the workspace the spec was built from: only the store.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from sluice.errors import StageFailed, StoreError, UsageError
from sluice.execute import run_one
from sluice.execute.base import Job
from sluice.pipeline.fingerprint import fingerprint_of
from sluice.pipeline.snapshot import restore_snapshot
from sluice.store.base import Store, checkout, checkout_tree
from sluice.store.layered import record_objects
from sluice.util.fs import remove_path
from sluice.util.hashing import (
    DIR_SUFFIX,
    Hasher,
    TreeEntry,
    hash_bytes,
    hash_file_uncached,
    manifest_from_bytes,
)
from sluice.util.safepath import check_digest, target_inside
from sluice.util.statcache import StatCache
from sluice.workspace.outputs import OutputRecord, store_outputs
from sluice.workspace.uses import run_metadata

SPEC_FORMATS = (1,)
_POINTER = "sluice-capsule-pointer"
_RESERVED = (".git",)  # inputs may live under .sluice/ (smoke samples); never under .git/
_FOLLOW_S = 0.2


class CapsuleSpecError(UsageError):
    """A capsule spec that is malformed, or whose parts do not agree."""


@dataclass
class CapsuleResult:
    """How one capsule ended: the stage's exit, costs, output hashes and where it ran."""

    stage: str
    fingerprint: str
    returncode: int
    wall_s: float
    cpu_s: float
    max_rss_bytes: int
    timed_out: bool
    outs: OutputRecord
    host: str
    executor: str
    gpus: list[int] = field(default_factory=list)
    cached: bool = False  # a complete record already existed: nothing ran
    error: str | None = None  # why it failed, when it did (setup, a missing output)
    setup_s: float = 0.0
    setup_built: bool = False  # the setup environment was built by this capsule

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


# ---------------------------------------------------------------------------- pointers


def pointer_key(run_id: str, stage: str) -> str:
    """The run-cache key of "stage ``stage`` of run ``run_id``" (a pointer record).

    Pointers live in the run cache beside fingerprints (another hash domain), so any
    store serves them with no new operation.
    """
    return hash_bytes(f"{_POINTER}\0{run_id}\0{stage}".encode())


def put_pointer(store: Store, run_id: str, stage: str, fingerprint: str) -> None:
    """Record that ``stage`` of ``run_id`` has its result under ``fingerprint``."""
    store.put_run(pointer_key(run_id, stage), {
        "pointer": _POINTER, "run_id": run_id, "stage": stage, "fingerprint": fingerprint,
        "created": time.time()})


def resolve_output(store: Store, run_id: str, stage: str, out: str) -> str:
    """The hash of output ``out`` of ``stage`` in run ``run_id``, from the store."""
    where = f"output `{out}` of stage `{stage}` (run {run_id})"
    pointer = store.get_run(pointer_key(run_id, stage))
    if pointer is None:
        raise StoreError(f"{where} is not in the store {store.url}: that stage has not "
                         "finished in this run",
                         hint="run the upstream stage's capsule first")
    record = store.get_run(check_digest(pointer.get("fingerprint"), f"the pointer of {where}"))
    outs = record.get("outs") if record else None
    if not isinstance(outs, dict) or not isinstance(outs.get(out), dict):
        raise StoreError(f"{where}: the run record it points to is missing or has no such "
                         "output", hint="rerun the upstream stage's capsule")
    return check_digest(outs[out].get("hash"), f"the run record of {where}")


# ---------------------------------------------------------------------------- the spec


def _bad(digest: str, problem: str) -> CapsuleSpecError:
    return CapsuleSpecError(f"the capsule spec {digest[:16]} {problem}",
                            hint="rebuild it with the sluice that runs it (`sluice run` "
                                 "writes a new one)")


def load_spec(store: Store, digest: str) -> dict[str, Any]:
    """The spec ``digest`` from ``store``, checked for shape (its bytes verified by hash)."""
    check_digest(digest, "the capsule spec argument")
    import json

    if not store.has(digest):
        raise CapsuleSpecError(
            f"the capsule spec {digest} is not in the store {store.url}",
            hint="give the store the run that submitted it wrote to (--store or "
                 "SLUICE_CACHE_URL); `sluice run` stores a spec before it submits it")
    try:
        spec = json.loads(store.read_bytes(digest))
    except ValueError:
        raise _bad(digest, "is not JSON") from None
    if not isinstance(spec, dict) or spec.get("format") not in SPEC_FORMATS:
        found = spec.get("format") if isinstance(spec, dict) else None
        raise _bad(digest, f"has an unknown format {found!r}")
    kinds = {"stage": str, "run_id": str, "command": str, "env": dict, "outs": dict,
             "components": dict, "snapshot": str, "inputs": list, "executor": str,
             "resources": dict}
    for key, kind in kinds.items():
        if not isinstance(spec.get(key), kind):
            raise _bad(digest, f"lacks `{key}` (or it is not a {kind.__name__})")
    for item in spec["inputs"]:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or \
                not (isinstance(item.get("hash"), str) or
                     (isinstance(item.get("stage"), str) and isinstance(item.get("out"), str))):
            raise _bad(digest, f"has a malformed input {item!r}")
    return spec


def _resolve(store: Store, spec: dict[str, Any], digest: str) -> str:
    """Fill upstream references in, check every input against the components; the fingerprint."""
    components = spec["components"]
    for item in spec["inputs"]:
        if "hash" not in item:
            item["hash"] = resolve_output(store, spec["run_id"], item["stage"], item["out"])
        key = item.get("key")
        if isinstance(key, list) and len(key) == 2:
            section = components.get(key[0])
            if not isinstance(section, dict) or key[1] not in section:
                raise _bad(digest, f"names input `{item['path']}` under no component")
            if "stage" in item:
                section[key[1]] = item["hash"]
            elif section[key[1]] != item["hash"]:
                raise _bad(digest, f"pins `{item['path']}` to a hash its components disagree "
                                   "with")
    fingerprint = fingerprint_of(components)
    given = spec.get("fingerprint")
    if given is not None and given != fingerprint:
        raise _bad(digest, "has a fingerprint that does not match its components")
    return fingerprint


def resolve_spec(store: Store, digest: str) -> tuple[dict[str, Any], str]:
    """The spec ``digest`` with its upstream references resolved, and its fingerprint.

    `sluice tier finish` reads a platform run back through this, so it settles each
    stage on the same evidence its capsule used.
    """
    spec = load_spec(store, digest)
    return spec, _resolve(store, spec, digest)


def complete(store: Store, record: dict[str, Any] | None) -> bool:
    """A record whose outputs (folder files included) are all in the store."""
    if not isinstance(record, dict) or not isinstance(record.get("outs"), dict):
        return False
    try:
        return not store.missing(record_objects(store, record))
    except (StoreError, KeyError, TypeError, AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------- materialising


def _materialise(store: Store, spec: dict[str, Any], scratch: Path) -> list[TreeEntry]:
    """The snapshot, then every input not already there with the same content."""
    if scratch.exists() and any(scratch.iterdir()):
        raise UsageError(f"the scratch folder {scratch} is not empty",
                         hint="give an empty or new folder (--scratch)")
    entries = restore_snapshot(store, check_digest(spec["snapshot"], "the code snapshot"),
                               scratch)
    have = {e.path: e.hash for e in entries}
    for item in spec["inputs"]:
        path, digest = item["path"], check_digest(item["hash"], f"input `{item['path']}`")
        what = f"input `{path}` of the capsule spec"
        if not digest.endswith(DIR_SUFFIX):
            if have.get(path) != digest:
                checkout(store, digest, target_inside(scratch, path, what, _RESERVED))
            continue
        files = manifest_from_bytes(store.read_bytes(digest), digest)
        from sluice.config.base import is_glob

        if is_glob(path):  # entries relative to the project root
            for entry in files:
                if have.get(entry.path) != entry.hash:
                    store.checkout_file(entry.hash, target_inside(scratch, entry.path, what,
                                                                  _RESERVED))
        elif not all(have.get(f"{path}/{e.path}") == e.hash for e in files):
            checkout_tree(store, digest, target_inside(scratch, path, what, _RESERVED))
    return entries


def _prepare_outputs(spec: dict[str, Any], scratch: Path) -> None:
    for name, rel in spec["outs"].items():
        target = target_inside(scratch, rel, f"output `{name}` of the capsule spec", _RESERVED)
        remove_path(target)  # a committed copy would be appended to, or left stale
        target.parent.mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------------------- running


def _follow(path: Path, out: IO[str], done: threading.Event) -> None:
    """Copy what is appended to ``path`` (the masked log) to ``out`` until ``done``."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    offset = 0
    while True:
        finished = done.is_set()
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        if data:
            offset += len(data)
            out.write(decoder.decode(data))
            out.flush()
        if finished:
            return
        done.wait(_FOLLOW_S)


@contextlib.contextmanager
def _following(path: Path, log: IO[str] | None) -> Iterator[None]:
    """While the block runs, stream the masked log at ``path`` to ``log`` (if any)."""
    if log is None:
        yield
        return
    done = threading.Event()
    follower = threading.Thread(target=_follow, args=(path, log, done), daemon=True)
    follower.start()
    try:
        yield
    finally:
        done.set()
        follower.join(5)


def executor_info(name: str, gpus: list[int]) -> dict[str, Any]:
    """Where a capsule ran: recorded with its result, never fingerprinted."""
    info: dict[str, Any] = {"name": name, "host": socket.gethostname(), "gpus": gpus,
                            "python": sys.version.split()[0]}
    if os.environ.get("SLUICE_IMAGE"):
        info["image"] = os.environ["SLUICE_IMAGE"]
    return info


def run_capsule(store: Store, spec_digest: str, *, scratch: Path, cache_dir: Path,
                log: IO[str] | None = None) -> CapsuleResult:
    """Run the capsule ``spec_digest`` from ``store`` in the empty folder ``scratch``.

    ``cache_dir`` keeps the worker's setup environments and logs; ``log`` receives the
    stage's (masked) output as it runs. Raises :class:`~sluice.errors.SluiceError` for
    a bad spec, an unreadable store or a hash mismatch (nothing ran); a failing stage
    or setup is a result (``returncode``, ``error``), not an error.
    """
    spec = load_spec(store, spec_digest)
    fingerprint = _resolve(store, spec, spec_digest)
    stage, executor = spec["stage"], spec["executor"]
    host = socket.gethostname()
    cached = store.get_run(fingerprint)
    if cached is not None and complete(store, cached):
        put_pointer(store, spec["run_id"], stage, fingerprint)
        ran_on = cached.get("executor")
        if not isinstance(ran_on, dict):
            ran_on = {}
        return CapsuleResult(stage, fingerprint, 0, 0.0, 0.0, 0, False, cached["outs"],
                             str(ran_on.get("host", host)), str(ran_on.get("name", executor)),
                             list(ran_on.get("gpus", [])), cached=True)
    _materialise(store, spec, scratch)
    _prepare_outputs(spec, scratch)
    token = secrets.token_hex(4)
    log_path = cache_dir / "logs" / f"{stage}-{token}.log"
    secret_names = tuple(str(n) for n in spec.get("secret_names") or ())
    env = {str(k): str(v) for k, v in spec["env"].items()}
    env["SLUICE_PYTHON"] = sys.executable
    setup_s, built = 0.0, False
    if spec.get("setup"):
        from sluice.pipeline.capsule_setup import SetupFailed, environment_vars

        started = time.monotonic()
        try:
            env_dir, built = _setup(spec, scratch, cache_dir,
                                    log_path.with_suffix(".setup.log"), log)
        except SetupFailed as exc:
            return CapsuleResult(stage, fingerprint, 1, time.monotonic() - started, 0.0, 0,
                                 False, {}, host, executor, error=exc.render(),
                                 setup_s=time.monotonic() - started)
        setup_s = time.monotonic() - started
        env.update(environment_vars(env_dir))
        env["SLUICE_PYTHON"] = str(env_dir / "bin" / "python")
    uses = spec.get("uses")
    if isinstance(uses, str):
        from sluice.config.uses import environment, run_id_file

        env.update(environment(uses, scratch, {**os.environ, **env}))
        (scratch / run_id_file(stage)).parent.mkdir(parents=True, exist_ok=True)
    resources = spec["resources"]
    timeout = spec.get("timeout")
    job = Job(stage=stage, command=spec["command"], cwd=scratch, env=env, log_path=log_path,
              timeout=float(timeout) if timeout is not None else None,
              cpus=int(resources.get("cpus") or 1), gpus=int(resources.get("gpus") or 0),
              memory=resources.get("memory"), secret_names=secret_names)
    with _following(log_path, log):
        result = run_one(job)
    outcome = CapsuleResult(stage, fingerprint, result.returncode, result.wall_s, result.cpu_s,
                            result.max_rss_bytes, result.timed_out, {}, host, executor,
                            list(result.gpu_ids), setup_s=setup_s, setup_built=built)
    if result.timed_out:
        outcome.error = f"killed after its {timeout:g} s timeout"
    if not result.ok:
        return outcome
    hasher = Hasher(StatCache(cache_dir / "capsule-stat.db"))  # never flushed: scratch is new
    try:
        outcome.outs = store_outputs(store, hasher, scratch, stage, spec["outs"])
    except StageFailed as exc:  # an output it did not write: the stage failed
        outcome.returncode, outcome.error = 1, exc.render()
        return outcome
    meta = run_metadata(uses, stage, scratch, log_path) if isinstance(uses, str) else None
    store.put_run(fingerprint, {
        "stage": stage, "outs": outcome.outs, "wall_s": result.wall_s, "cpu_s": result.cpu_s,
        "max_rss_bytes": result.max_rss_bytes, "run_id": spec["run_id"], "created": time.time(),
        "executor": executor_info(executor, list(result.gpu_ids)),
        **({"meta": meta} if meta else {})})
    put_pointer(store, spec["run_id"], stage, fingerprint)
    return outcome


def _setup(spec: dict[str, Any], scratch: Path, cache_dir: Path, log_path: Path,
           log: IO[str] | None) -> tuple[Path, bool]:
    from sluice.pipeline.capsule_setup import prepare_environment

    files = {}
    for rel in spec.get("setup_files") or []:
        path = target_inside(scratch, rel, "a setup file of the capsule spec", _RESERVED)
        files[rel] = hash_file_uncached(path)  # verified on the way in (the snapshot)

    def waiting() -> None:
        if log is not None:
            log.write("waiting for another capsule that builds the same setup environment\n")

    with _following(log_path, log):
        return prepare_environment(
            str(spec["setup"]), files, stage=spec["stage"], cwd=scratch, cache_dir=cache_dir,
            log_path=log_path, secret_names=tuple(spec.get("secret_names") or ()),
            on_wait=waiting)
