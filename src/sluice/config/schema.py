"""The ``sluice.yaml`` schema as pydantic models (version 1).

Only the *shape* of the file lives here. Cross-references (stage names, output
paths, params keys, interpolation) are checked in :mod:`sluice.config.load`, which
also turns pydantic's errors into messages with file, line and column.
"""

from __future__ import annotations

import re
import warnings
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

STAGE_KINDS = ("check", "transform", "train", "evaluate")
StageKind = Literal["check", "transform", "train", "evaluate"]

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*(?:d|days?))?"
                       r"\s*(?:(\d+(?:\.\d+)?)\s*(?:h|hr|hours?))?"
                       r"\s*(?:(\d+(?:\.\d+)?)\s*(?:m|min|minutes?))?"
                       r"\s*(?:(\d+(?:\.\d+)?)\s*(?:s|sec|seconds?))?\s*$")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2,
               "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


DURATION_EXAMPLES = "a duration like `90s`, `10m`, `1h30m` or `2h`"
SIZE_EXAMPLES = "a size like `512MB` or `4GiB`"


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"1h30m"``; must be positive.

    The ValueError's text completes "`timeout` must be …".
    """
    if isinstance(value, bool):
        raise ValueError(DURATION_EXAMPLES)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        match = _DURATION.match(value)
        if not match or not any(match.groups()):
            raise ValueError(DURATION_EXAMPLES)
        days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(DURATION_EXAMPLES)
    if seconds <= 0:
        raise ValueError("a duration greater than zero")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from ``1024``, ``"512MB"``, ``"4GiB"``; must be positive.

    The ValueError's text completes "`memory` must be …".
    """
    if isinstance(value, bool):
        raise ValueError(SIZE_EXAMPLES)
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        unit = match.group(2).lower() if match else None
        if not match or unit not in _SIZE_UNITS:
            raise ValueError(SIZE_EXAMPLES)
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    else:
        raise ValueError(SIZE_EXAMPLES)
    if size <= 0:
        raise ValueError("a size greater than zero")
    return size


def _number(value: Any) -> Any:
    """Accept ints where floats are meant (`usd: 500`), which strict mode refuses."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]


class _Strict(BaseModel):
    # defer_build: a config from the cache is built with model_construct and never
    # pays for building validators (most of pydantic's cost at start-up).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class Resources(_Strict):
    """What one run of a stage occupies while it runs."""

    cpus: Annotated[int, Field(ge=1)] = 1
    gpus: Annotated[int, Field(ge=0)] = 0
    memory: Size | None = None


class StageSpec(_Strict):
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


class SampleSpec(_Strict):
    """How sluice draws a smoke-run sample of a dataset itself (see ``sluice.sample``)."""

    key: StrictStr
    stratify: StrictStr | None = None


Threshold = Annotated[float, Field(ge=0), BeforeValidator(_number)]
OnDrift = Literal["warn", "fail"]


class ColumnDriftSpec(_Strict):
    """Per-column overrides of a dataset's drift thresholds."""

    psi: Threshold | None = None
    ks: Threshold | None = None
    wasserstein: Threshold | None = None
    js: Threshold | None = None
    linf: Threshold | None = None
    missing: Threshold | None = None
    on_drift: OnDrift | None = None
    ignore: StrictBool = False


class DriftSpec(_Strict):
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


class DatasetSpec(_Strict):
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


class GateSpec(_Strict):
    """A rule a candidate model must satisfy; see docs/gates.md."""

    metric: StrictStr
    min: Annotated[float, BeforeValidator(_number)] | None = None
    max: Annotated[float, BeforeValidator(_number)] | None = None
    max_regression: Margin | None = None
    min_improvement: Margin | None = None
    slices: list[StrictStr] = Field(default_factory=list)
    slice_values: list[StrictStr] | None = None
    min_slice_size: Annotated[int, Field(ge=1)] = 100
    confidence: Annotated[float, Field(gt=0.5, lt=1), BeforeValidator(_number)] = 0.95
    tiers: list[StrictStr] | None = None
    method: Literal["auto", "bootstrap", "mcnemar", "delong"] = "auto"


class BaselineSpec(_Strict):
    """What a candidate is compared with: a registry alias, or a predictions file."""

    alias: StrictStr | None = None
    predictions: StrictStr | None = None
    metrics: StrictStr | None = None  # a metrics JSON of the baseline, for point values


class ModelSpec(_Strict):
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


Amount = Annotated[PositiveFloat, BeforeValidator(_number)]
Price = Annotated[NonNegativeFloat, BeforeValidator(_number)]


class BudgetSpec(_Strict):
    """Limits on what a run (or a period) may spend; any unit may be left out."""

    wall: Duration | None = None
    cpu_hours: Amount | None = None
    gpu_hours: Amount | None = None
    usd: Amount | None = None


class PeriodBudgetSpec(BudgetSpec):
    """A rolling-window budget, optionally for some tiers only."""

    window: Duration | None = None  # default from the name: daily, weekly, monthly
    tiers: list[StrictStr] | None = None


class PushTrigger(_Strict):
    branches: list[StrictStr] = Field(default_factory=lambda: ["main"])


class PullRequestTrigger(_Strict):
    branches: list[StrictStr] | None = None


def _trigger_shorthand(value: Any) -> Any:
    """``trigger: pull_request`` is short for ``trigger: {pull_request: {}}``."""
    if isinstance(value, str):
        return {value: {} if value != "manual" else True}
    if isinstance(value, dict):
        return {k: ({} if v is None and k in ("push", "pull_request") else v)
                for k, v in value.items()}
    return value


class TriggerSpec(_Strict):
    """When a CI system starts a tier. Several may be combined."""

    pull_request: PullRequestTrigger | None = None
    push: PushTrigger | None = None
    schedule: StrictStr | None = None  # a cron expression, in UTC
    manual: StrictBool = False


# `register` is the natural word for the tier key; pydantic warns that it shadows
# ABCMeta.register on the class, which sluice never calls on a model.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class TierSpec(_Strict):
    """A named way to run the pipeline: what, on how much data, within what budget."""

    description: StrictStr | None = None
    trigger: Annotated[TriggerSpec, BeforeValidator(_trigger_shorthand)] = Field(
        default_factory=lambda: TriggerSpec(manual=True))
    select: Literal["affected", "all"] | list[StrictStr] = "affected"
    fraction: Annotated[float, Field(gt=0, le=1), BeforeValidator(_number)] = 1.0
    seeds: Annotated[int, Field(ge=1)] = 1
    params: dict[StrictStr, Any] = Field(default_factory=dict)
    budget: BudgetSpec | None = None
    on_budget: Literal["fail", "skip-expensive"] = "fail"
    register: StrictBool = False  # register a version of every model the run evaluated
    promote: StrictStr | None = None  # then move this alias to it (subject to its policy)
    executor: StrictStr | None = None  # default executor of the tier's train/evaluate stages


class PolicySpec(_Strict):
    """What moving a model into one alias takes."""

    gates: Literal["pass", "any"] = "pass"  # pass: every gate PASSED (INCONCLUSIVE is no pass)
    after: StrictStr | None = None  # an alias that must have held the version first
    approvals: Annotated[int, Field(ge=0)] = 0
    distinct_approver: StrictBool = True  # the requester cannot approve their own request
    branches: list[StrictStr] | None = None  # promote only from these branches
    actors: list[StrictStr] | None = None  # only these identities may promote or approve


class PricesSpec(_Strict):
    """What compute costs, to turn time into money."""

    cpu_hour: Price = 0.0
    gpu_hour: Price | dict[StrictStr, Price] = 0.0  # one price, or per GPU type
    per_run: Price = 0.0
    gpu_type: StrictStr | None = None  # this machine's GPU type when NVML cannot tell


EXECUTOR_TYPES = ("local", "ray")


class ExecutorSpec(_Strict):
    """A place stages run (see docs/executors.md): this machine, or a Ray cluster."""

    type: Literal["local", "ray"] = "local"
    address: StrictStr | None = None  # the Ray Jobs API URL; $SLUICE_RAY_ADDRESS overrides it
    setup: StrictStr | None = None  # shell command run on the worker before each stage
    retries: Annotated[int, Field(ge=0)] = 1  # resubmissions of a lost job
    env: list[EnvName] = Field(default_factory=list)  # copied into the job at submit, masked
    prices: PricesSpec | None = None  # this executor's prices instead of the global ones


class StorageSpec(_Strict):
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


class CISpec(_Strict):
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


class ExportTargetSpec(_Strict):
    """Where an exported step runs on the platform (docs/platforms.md): the `export:` keys
    that place a step, or the same keys under `export.executors.NAME` for the stages of
    one executor."""

    gpu_type: StrictStr | None = None  # accelerator type (nvidia-tesla-a100, V100, ...)
    node_selector: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # Kubernetes
    instance_type: StrictStr | None = None  # SageMaker instance type / Azure ML instance
    cluster: StrictStr | None = None  # Azure ML compute target / Databricks cluster id


class GitCloneSpec(_Strict):
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


class MlflowMirrorSpec(_Strict):
    """Mirror the registry to an MLflow model registry (docs/mlflow.md)."""

    # http(s)://host:port of the MLflow server; $MLFLOW_TRACKING_URI when unset. No
    # credential in it: MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD.
    tracking_uri: StrictStr | None = None
    experiment: StrictStr = "sluice"  # where the runs holding mirrored artifacts go
    prefix: StrictStr = ""  # registered model name = prefix + sluice model name
    retries: Annotated[int, Field(ge=1)] = 3  # attempts per request (transient errors)
    timeout: Duration = 30.0  # seconds per request
    log_runs: StrictBool = False  # also log each stage execution as an MLflow run


class MirrorSpec(_Strict):
    """Other registries every version and alias move is copied to."""

    mlflow: MlflowMirrorSpec | None = None


class ConfigSpec(_Strict):
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
