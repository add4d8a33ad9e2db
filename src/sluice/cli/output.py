"""Printing helpers shared by the CLI modules: plain lines, JSON, and the live view.

Plain one-line-per-event output is used when stdout is not a terminal or when
``CI`` is set; a rich live view otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from sluice.util.credentials import mask  # nothing sluice prints shows a credential


def is_interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def print_json(value: Any) -> None:
    sys.stdout.write(mask(json.dumps(value, indent=2, ensure_ascii=False)) + "\n")


def echo(text: str = "", *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(mask(text) + "\n")
    stream.flush()


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}"
        value = int(value / 1000)
    return f"{value} TB"
