"""The one error type of sluice and its subclasses.

The core raises these and never prints or exits; the CLI maps each class to an
exit code in one place (``sluice.cli.main.EXIT_CODES``). Every message says what
went wrong *and* how to fix it.
"""

from __future__ import annotations

from typing import NamedTuple


# Records on the path of `sluice data status` are NamedTuples, not dataclasses: importing
# dataclasses (and inspect with it) costs about 9 ms, 7 % of a warm status.
class Location(NamedTuple):
    """Where in a file a problem sits (1-based line and column)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class SluiceError(Exception):
    """Base of every error sluice reports to a user.

    ``message`` says what is wrong, ``hint`` how to fix it, ``location`` where.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 location: Location | None = None) -> None:
        self.message = message
        self.hint = hint
        self.location = location
        super().__init__(self.render())

    def render(self) -> str:
        text = self.message
        if self.location is not None:
            text = f"{text} ({self.location})"
        if self.hint:
            text = f"{text}\n  hint: {self.hint}"
        return text


def in_file_order(errors: list[ConfigError]) -> list[ConfigError]:
    """``errors`` sorted by file, line and column (stable; unlocated ones first)."""
    def key(e: ConfigError) -> tuple[str, int, int]:
        loc = e.location
        return ("", 0, 0) if loc is None else (loc.file, loc.line or 0, loc.column or 0)
    return sorted(errors, key=key)


class UsageError(SluiceError):
    """The command line asked for something that does not exist or makes no sense."""


class ConfigError(SluiceError):
    """``sluice.yaml`` (or a file it names) is missing or invalid."""


class ConfigErrors(ConfigError):
    """Several configuration problems found in one pass, reported together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.message, hint=first.hint, location=first.location)

    def render(self) -> str:
        if not getattr(self, "errors", None):
            return super().render()
        return "\n".join(e.render() for e in self.errors)


class StageFailed(SluiceError):
    """One or more stages failed, timed out, or did not produce their outputs."""


class StoreError(SluiceError):
    """The content store is unreadable, corrupt or unwritable."""


class CorruptObject(StoreError):
    """What came out of a store (bytes, a run record, a manifest) is not what it claims."""


class ResourceError(SluiceError):
    """A stage asks for more resources (CPUs, GPUs, memory) than this machine has."""


class BudgetRefused(SluiceError):
    """A run (or a stage) would exceed a budget."""


class DatabaseError(SluiceError):
    """The database cannot be reached, is locked, or has an unknown schema."""


class PromotionRefused(SluiceError):
    """A registry policy forbids an alias move, or another move won the race."""


class Interrupted(SluiceError):
    """The user pressed Ctrl-C (or the run received SIGTERM)."""


class DataInvalid(SluiceError):
    """Data that fails its schema, cannot be read, or drifted past a failing threshold."""


class PublishError(SluiceError):
    """A report could not be published to a pull or merge request."""


class EvidenceMissing(SluiceError):
    """The bytes a verdict needs are in neither the workspace nor a readable store."""


class PinnedDataMismatch(UsageError):
    """Data that the selected stages read is missing or differs from its pin."""
