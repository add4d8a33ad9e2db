"""The export of one tier, built once from ``sluice.yaml``; each platform module maps it.

Every step is one of three sluice commands (the contract with ``sluice tier``, see
docs/tier-run.md): ``sluice tier start`` first, ``sluice stage exec --run RUN --stage S``
for every stage of the pipeline, and ``sluice tier finish`` last, which the platform runs
even when a step failed. Which stages the tier selects, and which are cached, is decided
at run time by ``tier start``; so the definition depends on ``sluice.yaml``, the sluice
version and the image only, and embeds no content hash: the run id and the commit are
runtime parameters (:class:`Param`), which each platform spells its own way.

**Checks gate the expensive steps structurally**: every ``train``/``evaluate`` step
depends on every ``check`` step, besides its upstream stages in the DAG.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sluice.config.base import TIER_EXECUTOR_KINDS
from sluice.errors import UsageError

if TYPE_CHECKING:
    from sluice.config.schema import ExportTargetSpec
    from sluice.workspace.project import Project

RUN_ID = "run_id"
COMMIT = "commit"
# The commit has no default: `tier start` plans exactly the commit each submission names
# (a full SHA), also when it clones it (a run the platform starts on its own schedule).
START = "tier-start"
FINISH = "tier-finish"
# The capsule compares this with its own version and refuses a mismatched image (exit 2).
VERSION_ENV = "SLUICE_EXPORT_VERSION"  # pipeline.tier_manifest.EXPORT_VERSION_ENV reads it
STORE_ENV = "SLUICE_CACHE_URL"
GIT_TOKEN_ENV = "SLUICE_GIT_TOKEN"
START_TIMEOUT = 30 * 60  # planning and pushing the snapshot: generous, it only catches hangs
FINISH_TIMEOUT = 30 * 60
EXPENSIVE_KINDS = TIER_EXECUTOR_KINDS  # train, evaluate: what the checks gate
PLATFORMS = ("argo", "kfp", "sagemaker", "azureml", "databricks")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Param:
    """A runtime parameter in a command line: the run id or the commit."""

    name: str


Arg = str | Param


@dataclass(frozen=True)
class Placement:
    """Where a step runs on the platform (from `export:` and `export.executors.NAME`)."""

    gpu_type: str | None = None
    node_selector: tuple[tuple[str, str], ...] = ()
    instance_type: str | None = None
    cluster: str | None = None


@dataclass(frozen=True)
class Step:
    """One step of the exported pipeline."""

    name: str  # the stage's name, or START / FINISH
    kind: str  # "start", "finish", or the stage's kind
    args: tuple[Arg, ...]
    deps: tuple[str, ...] = ()  # steps that must succeed first
    cpus: int = 1
    gpus: int = 0
    memory: int | None = None  # bytes
    timeout: int | None = None  # seconds
    retries: int = 0
    placement: Placement = field(default_factory=Placement)

    def argv(self, render: dict[str, str]) -> list[str]:
        """The command with each parameter spelled as ``render`` says."""
        return [a if isinstance(a, str) else render[a.name] for a in self.args]


@dataclass(frozen=True)
class Export:
    """The whole exported pipeline of one tier."""

    name: str  # the pipeline's name on the platform
    project: str
    tier: str
    sluice_version: str
    image: str
    start: Step
    stages: tuple[Step, ...]
    finish: Step
    deadline: int | None  # the tier's wall budget, seconds
    env: tuple[tuple[str, str], ...]  # plain variables (store URL, exporting version)
    secrets: tuple[tuple[str, str], ...]  # variable -> the platform's secret (a reference)
    service_account: str | None = None
    placement: Placement = field(default_factory=Placement)
    description: str = ""

    @property
    def steps(self) -> tuple[Step, ...]:
        return (self.start, *self.stages, self.finish)

    @property
    def image_pinned(self) -> bool:
        return is_pinned(self.image)


def is_pinned(image: str) -> bool:
    """Whether ``image`` names its content (``NAME@sha256:…``), not a tag that can move."""
    return bool(_DIGEST.search(image))


def _placement(base: ExportTargetSpec, over: ExportTargetSpec | None) -> Placement:
    def pick(name: str) -> str | None:
        value: str | None = getattr(over, name, None) if over is not None else None
        return value if value is not None else getattr(base, name)

    selector = dict(base.node_selector)
    if over is not None:
        selector.update(over.node_selector)
    return Placement(gpu_type=pick("gpu_type"), node_selector=tuple(sorted(selector.items())),
                     instance_type=pick("instance_type"), cluster=pick("cluster"))


def safe_name(text: str, limit: int = 63) -> str:
    """A lower-case DNS-1123 label (Kubernetes, Argo and KFP names)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:limit].rstrip("-") or "sluice"


def build_export(project: Project, tier: str, image: str | None = None) -> Export:
    """The export of ``tier``, from ``sluice.yaml`` alone (no run, no store, no git)."""
    from sluice.util.version import installed_version

    spec = project.config.spec
    if tier not in spec.tiers:
        from sluice.util.suggest import did_you_mean

        raise UsageError(f"unknown tier `{tier}`" + did_you_mean(tier, list(spec.tiers)),
                         hint="export one of: " + (", ".join(spec.tiers) or "(no tiers: add a "
                                                   "`tiers:` section to sluice.yaml)"))
    export = spec.export
    for name in export.executors:
        if name not in spec.executors:
            from sluice.errors import ConfigError
            from sluice.util.suggest import did_you_mean

            raise ConfigError(f"`export: executors:` names unknown executor `{name}`"
                              + did_you_mean(name, list(spec.executors)),
                              location=project.config.locate("export", "executors", name,
                                                             key=True),
                              hint="use the name of an executor under `executors:`")
    chosen = image or export.image
    if not chosen:
        raise UsageError("no image to run the steps in",
                         hint="pass --image REGISTRY/NAME@sha256:DIGEST (an image with "
                              "sluice-ml and the project's requirements installed) or set "
                              "`export: image:` in sluice.yaml")
    version = installed_version()
    if version is None:
        raise UsageError("the sluice that exports is not installed (a bare source tree), so "
                         "there is no version for the image's sluice to match",
                         hint="pip install sluice-ml (or `pip install -e .`) and export again")
    tier_spec = spec.tiers[tier]
    config = project.config
    checks = [s for s in project.graph.order if config.stages[s].kind == "check"]
    run = Param(RUN_ID)
    stages: list[Step] = []
    for name in project.graph.order:
        stage = config.stages[name]
        deps = [START, *project.graph.upstream[name]]
        if stage.kind in EXPENSIVE_KINDS:
            deps += [c for c in checks if c not in deps]
        executor = config.executor_name(name, tier)
        executor_spec = config.executor_spec(executor)
        resources = stage.spec.resources
        stages.append(Step(
            name=name, kind=stage.kind,
            args=("sluice", "stage", "exec", "--run", run, "--stage", name),
            deps=tuple(deps), cpus=resources.cpus, gpus=resources.gpus, memory=resources.memory,
            timeout=math.ceil(stage.spec.timeout) if stage.spec.timeout else None,
            retries=executor_spec.retries if executor_spec is not None else export.retries,
            placement=_placement(export, export.executors.get(executor))))
    start_args: list[Arg] = ["sluice", "tier", "start", "--tier", tier, "--run-id", run,
                             "--commit", Param(COMMIT)]
    secrets = dict(export.secrets)
    if export.git is not None:
        start_args += ["--clone", export.git.url]
        secrets[GIT_TOKEN_ENV] = export.git.credential
    start_args.append("--json")
    base = _placement(export, None)
    start = Step(name=START, kind="start", args=tuple(start_args), timeout=START_TIMEOUT,
                 retries=export.retries, placement=base)
    finish = Step(name=FINISH, kind="finish",
                  args=("sluice", "tier", "finish", "--run-id", run, "--json"),
                  deps=tuple(s.name for s in stages), timeout=FINISH_TIMEOUT,
                  retries=export.retries, placement=base)
    wall = tier_spec.budget.wall if tier_spec.budget is not None else None
    env = [(VERSION_ENV, version)]
    store = spec.storage.cache
    if store:
        env.append((STORE_ENV, store))
    project_name = project.root.name
    return Export(
        name=safe_name(f"sluice-{project_name}-{tier}"), project=project_name, tier=tier,
        sluice_version=version, image=chosen, start=start, stages=tuple(stages), finish=finish,
        deadline=math.ceil(wall) if wall else None, env=tuple(env),
        secrets=tuple(sorted(secrets.items())), service_account=export.service_account,
        placement=base,
        description=tier_spec.description or f"sluice tier {tier} of {project_name}")
