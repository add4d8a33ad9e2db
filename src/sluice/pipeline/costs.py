"""Turning resource use into money: the ``prices`` table and GPU type detection.

GPU-seconds are allocated GPUs × wall time; the GPU type (for its price) comes
from NVML through ``nvidia-ml-py`` when a GPU is present, else from
``prices.gpu_type``, else the ``default`` price. An executor may have its own
``prices`` (a cluster bills differently from the CI runner): the stages it runs are
costed, estimated and capped with those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluice.errors import ConfigError

if TYPE_CHECKING:
    from sluice.config.base import Config
    from sluice.config.schema import PricesSpec


def detect_gpu_type() -> str | None:
    """The name of GPU 0 as NVML reports it (e.g. ``NVIDIA H100 80GB HBM3``), or None."""
    try:
        import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: NVML raises its own error types
        return None
    try:
        if pynvml.nvmlDeviceGetCount() == 0:
            return None
        name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        return name.decode() if isinstance(name, bytes) else str(name)
    finally:
        pynvml.nvmlShutdown()


@dataclass(frozen=True)
class Rates:
    """USD per second of one allocated CPU and one allocated GPU, and per run."""

    cpu_per_s: float
    gpu_per_s: float
    per_run: float
    gpu_type: str | None

    def cost(self, cpu_alloc_s: float, gpu_s: float) -> float:
        return cpu_alloc_s * self.cpu_per_s + gpu_s * self.gpu_per_s


def gpu_price(prices: PricesSpec, gpu_type: str | None) -> float:
    """USD per GPU-hour for ``gpu_type``: exact or substring match, then ``default``."""
    table = prices.gpu_hour
    if isinstance(table, float):
        return table
    if gpu_type:
        lowered = gpu_type.lower()
        for name, price in table.items():
            if name.lower() == lowered or name.lower() in lowered:
                return price
    if "default" in table:
        return table["default"]
    known = ", ".join(sorted(table)) or "(none)"
    raise ConfigError(f"no GPU price for GPU type `{gpu_type or 'unknown'}` "
                      f"(prices.gpu_hour lists: {known})",
                      hint="add that type, or a `default:` price, under `prices.gpu_hour`")


def rates(prices: PricesSpec, *, needs_gpu: bool, detect: bool = True) -> Rates:
    """Rates from ``prices``; ``detect``: this machine's GPU is the one that runs."""
    detected = detect_gpu_type() if needs_gpu and detect else None
    gpu_type = detected or prices.gpu_type
    per_gpu_hour = gpu_price(prices, gpu_type) if needs_gpu else 0.0
    return Rates(prices.cpu_hour / 3600, per_gpu_hour / 3600, prices.per_run, gpu_type)


def executor_rates(config: Config, executor: str, *, needs_gpu: bool,
                   default: Rates | None = None) -> Rates:
    """Rates for stages run by ``executor``: its own `prices:`, else ``default`` (or the
    global prices). A remote executor's GPU is not this machine's: its type comes from
    its prices, never from NVML here."""
    spec = config.executor_spec(executor)
    if spec is None or spec.prices is None:
        return default or rates(config.spec.prices, needs_gpu=needs_gpu)
    return rates(spec.prices, needs_gpu=needs_gpu, detect=not config.is_remote(executor))
