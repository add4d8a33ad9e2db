"""sluice: tiered, budgeted CI/CD for machine learning.

``import sluice`` is also the optional SDK for stage code::

    import sluice

    ctx = sluice.context()                     # tier, fraction, seed, stage, run id, outputs
    train = sluice.sample(frame, key="user_id")  # the tier's deterministic smoke sample
    model_path = sluice.output("model")

Importing the package stays cheap (the CLI imports it first): the SDK's names are
loaded from ``sluice.sdk`` and ``sluice.data.sampling`` on first use, and pandas only
when a DataFrame is sampled.
"""

from __future__ import annotations

import importlib

# Not typing's TYPE_CHECKING: every stage's supervisor imports this package, and
# typing would be a tenth of its start-up (sluice.execute.supervise).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sluice.data.sampling import materialise_sample
    from sluice.sdk import StageContext, context, output, sample, sample_mask

__all__ = ["StageContext", "context", "materialise_sample", "output", "sample", "sample_mask"]

_LAZY = {
    "StageContext": "sluice.sdk",
    "context": "sluice.sdk",
    "output": "sluice.sdk",
    "sample": "sluice.sdk",
    "sample_mask": "sluice.sdk",
    "materialise_sample": "sluice.data.sampling",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed distribution, only when asked
        from sluice.util.version import installed_version

        return installed_version() or "0+source"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sluice' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
