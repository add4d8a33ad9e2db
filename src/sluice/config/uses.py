"""Stages that run an MLflow Project or a Metaflow flow: ``uses: mlflow-project|metaflow``.

Such a stage is an ordinary stage once loaded: this module writes its ``cmd``
(which may then be left out of ``sluice.yaml``), adds the files it needs as deps,
and names the Python file whose local imports are deps too. Everything here is
derived from ``sluice.yaml`` alone, so a config from the cache stays right; what
a project's ``MLproject`` file says is read when the stage is fingerprinted
(:mod:`sluice.workspace.uses`).

- ``mlflow-project``: ``mlflow run PROJECT -e ENTRY --env-manager local -P name=value``,
  with ``mlflow`` (and the ``python`` its entry point runs) from ``PATH``.
- ``metaflow``: ``python FLOW run --name value --run-id-file …`` with Metaflow's local
  datastore and metadata under ``.sluice/metaflow`` unless the environment says otherwise.

A parameter's value is a params key, interpolated (hence shell-quoted and part of
the fingerprint) like any ``${params.…}`` in a command.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.config.schema import StageSpec
    from sluice.util.yamlsource import PathKey

MLFLOW_PROJECT = "mlflow-project"
METAFLOW = "metaflow"
MLPROJECT_FILE = "MLproject"
DEFAULT_ENTRY_POINT = "main"
STATE_DIR = ".sluice"  # sluice's state folder (the workspace's STATE_DIR), run-id files go there
_OWN_KEYS = {MLFLOW_PROJECT: ("project", "entry_point"), METAFLOW: ("flow",)}

Fail = Callable[[str, "PathKey", str], None]
Path_ = Callable[[str, str, "PathKey"], "str | None"]


def run_id_file(stage: str) -> str:
    """Where a Metaflow stage's run id is written (``--run-id-file``), repo-relative."""
    return f"{STATE_DIR}/logs/{stage}.run-id"  # beside its log, which exists


def parameters(spec: StageSpec) -> dict[str, str]:
    """Parameter name -> params key: ``parameters:``, else each ``params:`` key by its last part."""
    if spec.parameters is not None:
        return dict(spec.parameters)
    return {key.rsplit(".", 1)[-1]: key for key in spec.params}


def project_dir(spec: StageSpec) -> str:
    return posixpath.normpath((spec.project or ".").strip())


def entry_script(spec: StageSpec) -> str | None:
    """The flow file of a Metaflow stage (an MLflow entry's script is in its MLproject)."""
    return posixpath.normpath(spec.flow.strip()) if spec.uses == METAFLOW and spec.flow else None


def generate(name: str, spec: StageSpec, fail: Fail,
             path: Path_) -> tuple[StageSpec, list[str]] | None:
    """(the spec with its generated ``cmd``, extra deps) for a ``uses:`` stage; None after
    reporting a problem through ``fail`` (message, where, hint)."""
    at: PathKey = ("stages", name)
    kind = spec.uses
    if kind is None:
        return None
    ok = True
    if spec.cmd is not None:
        fail(f"stage `{name}` has both `cmd` and `uses: {kind}`", (*at, "cmd"),
             "leave `cmd` out: sluice writes the command of a `uses:` stage")
        ok = False
    for other, keys in _OWN_KEYS.items():
        for key in keys:
            if other != kind and getattr(spec, key) is not None:
                fail(f"`{key}` of stage `{name}` belongs to `uses: {other}`, not `{kind}`",
                     (*at, key), f"remove `{key}`, or set `uses: {other}`")
                ok = False
    names = parameters(spec)
    if spec.parameters is None and len(names) < len(spec.params):
        fail(f"two params keys of stage `{name}` end in the same name", (*at, "params"),
             "name each parameter: `parameters: {NAME: params.key, …}`")
        ok = False
    for param in names:
        if not param.replace("-", "_").isidentifier():
            fail(f"parameter name `{param}` of stage `{name}` is not a valid name",
                 (*at, "parameters") if spec.parameters is not None else (*at, "params"),
                 "use letters, digits, `_` and `-`")
            ok = False
    if kind == METAFLOW and spec.flow is None:
        fail(f"stage `{name}` uses metaflow but names no flow file", (*at, "uses"),
             "add `flow: path/to/flow.py`")
        return None
    if not ok:
        return None
    if kind == MLFLOW_PROJECT:
        folder = path(spec.project or ".", f"project folder {{path}} of stage `{name}`",
                      (*at, "project") if spec.project is not None else at)
        if folder is None:
            return None
        entry = spec.entry_point or DEFAULT_ENTRY_POINT
        words = ["mlflow", "run", shlex.quote(folder), "-e", shlex.quote(entry),
                 "--env-manager", "local"]
        words += [f"-P {shlex.quote(p + '=')}${{params.{k}}}" for p, k in names.items()]
        deps = [posixpath.join(folder, MLPROJECT_FILE) if folder != "." else MLPROJECT_FILE]
    else:
        assert spec.flow is not None
        flow = path(spec.flow, f"flow file {{path}} of stage `{name}`", (*at, "flow"))
        if flow is None:
            return None
        words = ["python", shlex.quote(flow), "run"]
        words += [f"--{shlex.quote(p)} ${{params.{k}}}" for p, k in names.items()]
        words += ["--run-id-file", shlex.quote(run_id_file(name))]
        deps = [flow]
    generated = spec.model_copy(update={"cmd": " ".join(words)})
    return generated, [d for d in deps if d not in spec.deps]


def environment(kind: str | None, root: Path, inherited: dict[str, str]) -> dict[str, str]:
    """Defaults a ``uses: KIND`` stage runs with in the folder ``root``, unless the
    environment (or the stage's `env`) sets them: MLflow's tracking store and Metaflow's
    datastore under ``.sluice``. Computed where the stage runs (absolute paths, this
    machine's mlflow), never carried to another machine in a capsule's spec."""
    state = root / STATE_DIR
    path = inherited.get("PATH") or ""
    extra: dict[str, str] = {}
    if kind == MLFLOW_PROJECT:
        defaults = {} if "MLFLOW_TRACKING_URI" in inherited else {
            "MLFLOW_TRACKING_URI": (state / "mlruns").as_uri(),
            # MLflow 3 refuses its file store unless asked: the store is a local
            # scratch record here; point MLFLOW_TRACKING_URI at a server to keep runs.
            "MLFLOW_ALLOW_FILE_STORE": "true"}
        folder = _mlflow_python_dir(path)
        if folder is not None and not path.startswith(folder + os.pathsep):
            # `--env-manager local` runs the entry point with `python` from PATH: make that
            # the Python mlflow is installed in, as running that mlflow by hand would.
            extra["PATH"] = folder + os.pathsep + path
    elif kind == METAFLOW:
        defaults = {"METAFLOW_DEFAULT_DATASTORE": "local",
                    "METAFLOW_DEFAULT_METADATA": "local",
                    "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(state / "metaflow")}
        if "USER" not in inherited and "USERNAME" not in inherited:
            defaults["METAFLOW_USER"] = "sluice"  # Metaflow refuses to run for no user
    else:
        return {}
    return {**{k: v for k, v in defaults.items() if k not in inherited}, **extra}


def _mlflow_python_dir(path: str | None) -> str | None:
    """The folder of the Python that the ``mlflow`` on ``path`` runs in (through a pipx-style
    link to the venv's script), or None when there is no mlflow or no python beside it."""
    import shutil  # (not on a no-op run's path)

    found = shutil.which("mlflow", path=path)
    if found is None:
        return None
    folder = os.path.dirname(os.path.realpath(found))
    return folder if os.path.exists(os.path.join(folder, "python")) else None
