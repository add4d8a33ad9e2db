"""What validating a dataset found: failing checks with counts and example rows.

Plain dataclasses that turn into JSON (for ``--json``, reports and the cache)
and back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

DATASET = "<dataset>"  # the "column" of checks on the whole dataset
MAX_EXAMPLES = 5


def json_value(value: Any) -> Any:
    """``value`` (numpy scalar, Timestamp, NaN, ...) as something JSON can hold."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, dt.date | dt.datetime) or hasattr(value, "isoformat"):
        return str(value.isoformat())
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return str(value)


@dataclass(frozen=True)
class Example:
    """One failing value and where it is: the global row (0-based) and, for folders, the file."""

    row: int | None
    value: Any
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"row": self.row, "value": self.value}
        if self.file is not None:
            data["file"] = self.file
        return data


@dataclass
class CheckFailure:
    """One check that failed: how many rows fail it, a few examples, and what it means."""

    column: str
    check: str
    failing_rows: int
    message: str
    examples: list[Example] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "failing_rows": self.failing_rows,
                "message": self.message, "examples": [e.to_json() for e in self.examples]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> CheckFailure:
        return CheckFailure(data["column"], data["check"], int(data["failing_rows"]),
                            data["message"], [Example(e.get("row"), e.get("value"), e.get("file"))
                                              for e in data.get("examples", [])])


@dataclass
class DatasetValidation:
    """The result of validating one dataset against its schema."""

    dataset: str
    path: str
    schema: str
    rows: int
    failures: list[CheckFailure]
    files: int = 1
    seconds: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "path": self.path, "schema": self.schema,
                "ok": self.ok, "rows": self.rows, "files": self.files,
                "seconds": round(self.seconds, 3), "cached": self.cached,
                "failures": [f.to_json() for f in self.failures]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> DatasetValidation:
        return DatasetValidation(
            dataset=data["dataset"], path=data["path"], schema=data["schema"],
            rows=int(data["rows"]), files=int(data.get("files", 1)),
            seconds=float(data.get("seconds", 0.0)), cached=bool(data.get("cached", False)),
            failures=[CheckFailure.from_json(f) for f in data["failures"]])
