"""``${...}`` interpolation in stage commands and environment values.

A reference is a dotted name (``${outs.model}``, ``${params.train.lr}``,
``${stages.features.outs.table}``, ``${datasets.raw}``, ``${tier.fraction}``).
Substituted values are shell-quoted, so a path with spaces stays one argument.
``$${`` writes a literal ``${``. Only ``cmd`` and ``env`` are interpolated; a
``${`` anywhere sluice takes a value as written (paths, alias names) would stay
in it literally, so the config layer refuses it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_REF = re.compile(r"\$(\$?)\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
NAMESPACES = ("outs", "stages", "datasets", "params", "tier")


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` occurrence: its dotted name and its column in the template."""

    name: str
    offset: int

    @property
    def parts(self) -> list[str]:
        return self.name.split(".")


class InterpolationError(ValueError):
    """A malformed reference; the config layer adds where it is (file, line, field)."""

    def __init__(self, message: str, offset: int, hint: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.hint = hint


def references(template: str) -> Iterator[Reference]:
    """Every ``${...}`` in ``template`` (escaped ``$${...}`` excluded)."""
    covered: list[tuple[int, int]] = []
    for match in _REF.finditer(template):
        covered.append(match.span())
        if match.group(1):
            continue
        name = match.group(2).strip()
        if not _NAME.match(name):
            raise InterpolationError(
                f"`${{{match.group(2)}}}` is not a valid reference", match.start(),
                "write a dotted name like `${outs.model}` or `${params.train.lr}`, "
                "or `$${` for a literal `${`")
        yield Reference(name, match.start())
    # A `${` with no closing brace is almost always a typo that would reach the
    # shell unnoticed; an escaped `$${` is the user saying it is meant.
    at = template.find("${")
    while at != -1:
        escaped = at > 0 and template[at - 1] == "$"
        inside = any(start <= at < end for start, end in covered)
        if not escaped and not inside:
            raise InterpolationError("unclosed `${`", at,
                                     "close it with `}`, or write `$${` for a literal `${`")
        at = template.find("${", at + 1)


def format_value(value: Any) -> str:
    """How a params or context value is written into a command before quoting."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def render(template: str, resolve: Callable[[Reference], Any], *, quote: bool = True) -> str:
    """Substitute every reference with ``resolve(ref)``, shell-quoted when ``quote``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        text = format_value(resolve(Reference(match.group(2).strip(), match.start())))
        return shlex.quote(text) if quote else text

    return _REF.sub(substitute, template)
