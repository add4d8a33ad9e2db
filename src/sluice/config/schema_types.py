"""The scalar types of the ``sluice.yaml`` schema, and the base of its models.

Durations (``90s``, ``1h30m``) and sizes (``512MB``, ``4GiB``) with their parsers,
the patterns of names, and :class:`StrictModel`, which every section of
:mod:`sluice.config.schema` derives from. The parsers also serve command-line
options written the same way (``sluice gc --grace 24h``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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


def int_as_float(value: Any) -> Any:
    """Accept ints where floats are meant (`usd: 500`), which strict mode refuses."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]


class StrictModel(BaseModel):
    # The base of every section: unknown keys refused, no type coercion, immutable.
    # defer_build: a config from the cache is built with model_construct and never
    # pays for building validators (most of pydantic's cost at start-up).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)
