"""The ``sluice.yaml`` schema as pydantic models (version 1).

Only the *shape* of the file lives here; its scalar types (durations, sizes, names)
and the models' strict base are in :mod:`sluice.config.schema_types`.
Cross-references (stage names, output paths, params keys, interpolation) are
checked in :mod:`sluice.config.resolve`; :mod:`sluice.config.load` also turns
pydantic's errors into messages with file, line and column.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, StrictStr

from sluice.config.schema_types import (
    Duration,
    EnvName,
    Name,
    Size,
    StrictModel,
    int_as_float,
)

STAGE_KINDS = ("check", "transform", "train", "evaluate")
StageKind = Literal["check", "transform", "train", "evaluate"]


class Resources(StrictModel):
    """What one run of a stage occupies while it runs."""

    cpus: Annotated[int, Field(ge=1)] = 1
    gpus: Annotated[int, Field(ge=0)] = 0
    memory: Size | None = None


class StageSpec(StrictModel):
    """One step of the pipeline, as written in ``sluice.yaml``."""

    cmd: StrictStr | None = None  # generated for a stage with `uses:` (sluice.config.uses)
    kind: StageKind = "transform"
    description: StrictStr | None = None
    deps: list[StrictStr] = Field(default_factory=list)
    inputs: list[StrictStr] = Field(default_factory=list)
    outs: dict[Name, StrictStr] = Field(default_factory=dict)
    params: list[StrictStr] = Field(default_factory=list)
    env: dict[EnvName, StrictStr] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    timeout: Duration | None = None
    discover_imports: StrictBool = True
    executor: StrictStr | None = None  # a name under `executors:` (default: tier's, or local)
    # An MLflow Project or a Metaflow flow run as this stage (docs/mlflow-projects.md).
    uses: Literal["mlflow-project", "metaflow"] | None = None
    project: StrictStr | None = None  # mlflow-project: the project folder (default `.`)
    entry_point: StrictStr | None = None  # mlflow-project: the entry point (default `main`)
    flow: StrictStr | None = None  # metaflow: the flow file
    parameters: dict[StrictStr, StrictStr] | None = None  # parameter name -> params key


class SampleSpec(StrictModel):
    """How sluice draws a smoke-run sample of a dataset itself (see ``sluice.sample``)."""

    key: StrictStr
    stratify: StrictStr | None = None


Threshold = Annotated[float, Field(ge=0), BeforeValidator(int_as_float)]
OnDrift = Literal["warn", "fail"]


class ColumnDriftSpec(StrictModel):
    """Per-column overrides of a dataset's drift thresholds."""

    psi: Threshold | None = None
    ks: Threshold | None = None
    wasserstein: Threshold | None = None
    js: Threshold | None = None
    linf: Threshold | None = None
    missing: Threshold | None = None
    on_drift: OnDrift | None = None
    ignore: StrictBool = False


class DriftSpec(StrictModel):
    """How a dataset is compared with its reference data, and when that is an alert."""

    # base: the dataset at the base revision (through sluice.lock);
    # model: the data the model at `alias` was trained on (registry lineage).
    reference: Literal["base", "model"] = "base"
    model: StrictStr | None = None
    alias: StrictStr = "production"
    psi: Threshold = 0.2
    ks: Threshold = 0.1
    wasserstein: Threshold | None = None  # in units of the reference's standard deviation
    js: Threshold = 0.1
    linf: Threshold = 0.2
    missing: Threshold = 0.05  # absolute change of the missing-value rate
    on_drift: OnDrift = "warn"
    bins: Annotated[int, Field(ge=2, le=1000)] = 10
    top: Annotated[int, Field(ge=1)] = 10
    columns: dict[StrictStr, ColumnDriftSpec] = Field(default_factory=dict)


warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)


class DatasetSpec(StrictModel):
    """Named data: a file or directory in the repo."""

    path: StrictStr
    description: StrictStr | None = None
    sample: SampleSpec | None = None
    format: Literal["auto", "parquet", "csv", "jsonl"] = "auto"
    schema: StrictStr | None = None  # type: ignore[assignment]  # a schema YAML file
    drift: DriftSpec | None = None


def _margin(value: Any) -> Any:
    """``0.01`` (absolute) or ``"2%"`` (relative to the baseline's value)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


Margin = Annotated[Annotated[float, Field(ge=0)] | Annotated[StrictStr, Field(
    pattern=r"^\s*\d+(\.\d+)?\s*%\s*$")], BeforeValidator(_margin)]


class GateSpec(StrictModel):
    """A rule a candidate model must satisfy; see docs/gates.md."""

    metric: StrictStr
    min: Annotated[float, BeforeValidator(int_as_float)] | None = None
    max: Annotated[float, BeforeValidator(int_as_float)] | None = None
    max_regression: Margin | None = None
    min_improvement: Margin | None = None
    slices: list[StrictStr] = Field(default_factory=list)
    slice_values: list[StrictStr] | None = None
    min_slice_size: Annotated[int, Field(ge=1)] = 100
    confidence: Annotated[float, Field(gt=0.5, lt=1), BeforeValidator(int_as_float)] = 0.95
    tiers: list[StrictStr] | None = None
    method: Literal["auto", "bootstrap", "mcnemar", "delong"] = "auto"


class BaselineSpec(StrictModel):
    """What a candidate is compared with: a registry alias, or a predictions file."""

    alias: StrictStr | None = None
    predictions: StrictStr | None = None
    metrics: StrictStr | None = None  # a metrics JSON of the baseline, for point values


class ModelSpec(StrictModel):
    """A named product of the pipeline."""

    train: StrictStr
    artifact: StrictStr
    evaluate: StrictStr | None = None
    description: StrictStr | None = None
    predictions: StrictStr | None = None  # the evaluate stage's output holding predictions
    metrics: StrictStr | None = None  # its output holding a metrics JSON (point values)
    baseline: BaselineSpec | None = None
    gates: list[GateSpec] = Field(default_factory=list)


def _dataset_shorthand(value: Any) -> Any:
    """``raw: data/raw.csv`` is short for ``raw: {path: data/raw.csv}``."""
    if isinstance(value, dict):
        return {k: ({"path": v} if isinstance(v, str) else v) for k, v in value.items()}
    return value


PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


Amount = Annotated[PositiveFloat, BeforeValidator(int_as_float)]
Price = Annotated[NonNegativeFloat, BeforeValidator(int_as_float)]


class BudgetSpec(StrictModel):
    """Limits on what a run (or a period) may spend; any unit may be left out."""

    wall: Duration | None = None
    cpu_hours: Amount | None = None
    gpu_hours: Amount | None = None
    usd: Amount | None = None


class PeriodBudgetSpec(BudgetSpec):
    """A rolling-window budget, optionally for some tiers only."""

    window: Duration | None = None  # default from the name: daily, weekly, monthly
    tiers: list[StrictStr] | None = None


class PushTrigger(StrictModel):
    branches: list[StrictStr] = Field(default_factory=lambda: ["main"])


class PullRequestTrigger(StrictModel):
    branches: list[StrictStr] | None = None


def _trigger_shorthand(value: Any) -> Any:
    """``trigger: pull_request`` is short for ``trigger: {pull_request: {}}``."""
    if isinstance(value, str):
        return {value: {} if value != "manual" else True}
    if isinstance(value, dict):
        return {k: ({} if v is None and k in ("push", "pull_request") else v)
                for k, v in value.items()}
    return value


class TriggerSpec(StrictModel):
    """When a CI system starts a tier. Several may be combined."""

    pull_request: PullRequestTrigger | None = None
    push: PushTrigger | None = None
    schedule: StrictStr | None = None  # a cron expression, in UTC
    manual: StrictBool = False


# `register` is the natural word for the tier key; pydantic warns that it shadows
# ABCMeta.register on the class, which sluice never calls on a model.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class TierSpec(StrictModel):
    """A named way to run the pipeline: what, on how much data, within what budget."""

    description: StrictStr | None = None
    trigger: Annotated[TriggerSpec, BeforeValidator(_trigger_shorthand)] = Field(
        default_factory=lambda: TriggerSpec(manual=True))
    select: Literal["affected", "all"] | list[StrictStr] = "affected"
    fraction: Annotated[float, Field(gt=0, le=1), BeforeValidator(int_as_float)] = 1.0
    seeds: Annotated[int, Field(ge=1)] = 1
    params: dict[StrictStr, Any] = Field(default_factory=dict)
    budget: BudgetSpec | None = None
    on_budget: Literal["fail", "skip-expensive"] = "fail"
    register: StrictBool = False  # register a version of every model the run evaluated
    promote: StrictStr | None = None  # then move this alias to it (subject to its policy)
    executor: StrictStr | None = None  # default executor of the tier's train/evaluate stages


class PolicySpec(StrictModel):
    """What moving a model into one alias takes."""

    gates: Literal["pass", "any"] = "pass"  # pass: every gate PASSED (INCONCLUSIVE is no pass)
    after: StrictStr | None = None  # an alias that must have held the version first
    approvals: Annotated[int, Field(ge=0)] = 0
    distinct_approver: StrictBool = True  # the requester cannot approve their own request
    branches: list[StrictStr] | None = None  # promote only from these branches
    actors: list[StrictStr] | None = None  # only these identities may promote or approve


class PricesSpec(StrictModel):
    """What compute costs, to turn time into money."""

    cpu_hour: Price = 0.0
    gpu_hour: Price | dict[StrictStr, Price] = 0.0  # one price, or per GPU type
    per_run: Price = 0.0
    gpu_type: StrictStr | None = None  # this machine's GPU type when NVML cannot tell


EXECUTOR_TYPES = ("local", "ray")


class ExecutorSpec(StrictModel):
    """A place stages run (see docs/executors.md): this machine, or a Ray cluster."""

    type: Literal["local", "ray"] = "local"
    address: StrictStr | None = None  # the Ray Jobs API URL; $SLUICE_RAY_ADDRESS overrides it
    setup: StrictStr | None = None  # shell command run on the worker before each stage
    retries: Annotated[int, Field(ge=0)] = 1  # resubmissions of a lost job
    env: list[EnvName] = Field(default_factory=list)  # copied into the job at submit, masked
    prices: PricesSpec | None = None  # this executor's prices instead of the global ones


class StorageSpec(StrictModel):
    """Where CI runners share state (a content store on any fsspec URL, and a database),
    and how pinned data lands in the workspace (copies, or ``link``: hard links)."""

    cache: StrictStr | None = None  # s3://bucket/prefix, gs://…, az://…, file:///shared/…
    database: StrictStr | None = None  # postgresql+psycopg://… (same as top-level `database`)
    # Pinned data as hard links to read-only store objects instead of copies (docs/data.md).
    link: StrictBool = False


def _names_or_mapping(value: Any) -> Any:
    """``[NAME, …]`` is short for ``{NAME: NAME, …}``: each variable from the secret so named."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: v for v in value}
    return value


class CISpec(StrictModel):
    """What the generated CI files need to know about the project."""

    python: StrictStr = "3.11"
    install: StrictStr = "pip install -e ."
    default_branch: StrictStr = "main"
    runs_on: StrictStr = "ubuntu-latest"  # GitHub runner label
    image: StrictStr = "python:3.11"  # GitLab / CircleCI / Jenkins container image
    secrets: list[EnvName] = Field(default_factory=list)  # passed to non-PR jobs only
    # Read-only store credentials for pull-request jobs: variable -> the CI secret holding it.
    read_secrets: Annotated[dict[EnvName, EnvName], BeforeValidator(_names_or_mapping)] = \
        Field(default_factory=dict)
    artifacts: list[StrictStr] = Field(default_factory=list)  # extra paths to upload


class ExportTargetSpec(StrictModel):
    """Where an exported step runs on the platform (docs/platforms.md): the `export:` keys
    that place a step, or the same keys under `export.executors.NAME` for the stages of
    one executor."""

    gpu_type: StrictStr | None = None  # accelerator type (nvidia-tesla-a100, V100, ...)
    node_selector: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # Kubernetes
    instance_type: StrictStr | None = None  # SageMaker instance type / Azure ML instance
    cluster: StrictStr | None = None  # Azure ML compute target / Databricks cluster id


class GitCloneSpec(StrictModel):
    """How a step started on the platform's own schedule gets the commit."""

    url: StrictStr  # https URL of the repository (no credential in it)
    credential: StrictStr  # the platform's secret holding a read token (a reference)


class ExportSpec(ExportTargetSpec):
    """What `sluice export` needs besides the tiers: image, identity and secret references."""

    image: StrictStr | None = None  # the team's image with sluice inside (--image overrides)
    service_account: StrictStr | None = None  # Kubernetes SA / SageMaker role / identity
    # Variable -> the platform's secret holding its value, e.g. `sluice-db/url`
    # (Kubernetes secret/key, Databricks scope/key). Never a value.
    secrets: dict[EnvName, StrictStr] = Field(default_factory=dict)
    git: GitCloneSpec | None = None
    retries: Annotated[int, Field(ge=0)] = 2  # retries of a lost or preempted step
    executors: dict[Name, ExportTargetSpec] = Field(default_factory=dict)


class MlflowMirrorSpec(StrictModel):
    """Mirror the registry to an MLflow model registry (docs/mlflow.md)."""

    # http(s)://host:port of the MLflow server; $MLFLOW_TRACKING_URI when unset. No
    # credential in it: MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD.
    tracking_uri: StrictStr | None = None
    experiment: StrictStr = "sluice"  # where the runs holding mirrored artifacts go
    prefix: StrictStr = ""  # registered model name = prefix + sluice model name
    retries: Annotated[int, Field(ge=1)] = 3  # attempts per request (transient errors)
    timeout: Duration = 30.0  # seconds per request
    log_runs: StrictBool = False  # also log each stage execution as an MLflow run


class MirrorSpec(StrictModel):
    """Other registries every version and alias move is copied to."""

    mlflow: MlflowMirrorSpec | None = None


class ConfigSpec(StrictModel):
    """The whole ``sluice.yaml``."""

    version: Literal[1] = 1
    params: StrictStr | None = None
    remote: StrictStr | None = None
    datasets: Annotated[dict[Name, DatasetSpec],
                        BeforeValidator(_dataset_shorthand)] = Field(default_factory=dict)
    stages: dict[Name, StageSpec] = Field(default_factory=dict)
    models: dict[Name, ModelSpec] = Field(default_factory=dict)
    tiers: dict[Name, TierSpec] = Field(default_factory=dict)
    prices: PricesSpec = Field(default_factory=PricesSpec)
    budgets: dict[Name, PeriodBudgetSpec] = Field(default_factory=dict)
    promotion: dict[Name, PolicySpec] = Field(default_factory=dict)
    database: StrictStr | None = None
    storage: StorageSpec = Field(default_factory=lambda: StorageSpec())
    executors: dict[Name, ExecutorSpec] = Field(default_factory=dict)
    ci: CISpec = Field(default_factory=lambda: CISpec())
    export: ExportSpec = Field(default_factory=lambda: ExportSpec())
    mirror: MirrorSpec = Field(default_factory=lambda: MirrorSpec())
