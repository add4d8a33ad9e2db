"""Showing a run as it happens: a rich live view in a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sluice.cli.output import is_interactive, seconds, size
from sluice.util.credentials import mask, masker

if TYPE_CHECKING:
    from sluice.pipeline.base import Event, StageOutcome

STATUS_WORDS = {"ran": "ran", "cached": "cached", "budget": "BUDGET", "gated": "gated",
                "failed": "FAILED", "timeout": "TIMEOUT", "skipped": "skipped",
                "cancelled": "cancelled"}


def outcome_line(outcome: StageOutcome, width: int) -> str:
    detail = outcome.reason
    if outcome.status == "ran":
        detail = f"{seconds(outcome.wall_s)}, cpu {seconds(outcome.cpu_s)}, " \
                 f"peak {size(outcome.max_rss_bytes)}"
    return f"  {STATUS_WORDS[outcome.status]:<10} {outcome.stage:<{width}}  {detail}"


def failure_lines(outcome: StageOutcome) -> list[str]:
    if not outcome.log_tail:
        return []
    lines = [f"    last lines of {outcome.log_path}:"]
    lines += [f"    | {line}" for line in outcome.log_tail]
    return lines


class Progress:
    """Receives run events; prints them plainly or drives a live view."""

    def __init__(self, stage_names: list[str], *, stream: Any = None,
                 group: str | None = None) -> None:
        from sluice.ci.base import ci_system

        # In CI the stage lines fold into one group; failure logs wait for its end,
        # so that they stay in view (groups cannot nest).
        self.group = group if group is not None and ci_system() is not None else None
        self.deferred: list[str] = []
        self.width = max((len(n) for n in stage_names), default=5)
        self.stream = stream or sys.stderr
        self.live: Any = None
        self.running: dict[str, float] = {}
        self.done = 0
        self.total = len(stage_names)
        self.mask: Callable[[str], str] = mask
        if is_interactive() and stream is None:
            from rich.console import Console
            from rich.live import Live

            self.console = Console(file=self.stream)
            self.live = Live(self._view(), console=self.console, refresh_per_second=8,
                             transient=True, get_renderable=self._view)

    def _view(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        # Text, not markup strings: the view is redrawn under each line printed with
        # markup=False (stage names and logs are not markup), which showed "[dim]…[/]".
        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for name, started in self.running.items():
            table.add_row(Spinner("dots"), Text(name), Text(seconds(now - started), style="dim"))
        table.add_row("", Text(f"{self.done}/{self.total} stages settled", style="dim"), "")
        return table

    def __enter__(self) -> Progress:
        if self.live is not None:
            self.live.__enter__()
        if self.group is not None:
            from sluice.ci.annotations import group_start

            self._print(group_start(self.group))
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.__exit__(kind, value, tb)
        if self.group is not None:
            from sluice.ci.annotations import group_end

            end = group_end(self.group)
            if end is not None:
                self._print(end)
            for line in self.deferred:
                self._print(line)

    def _print(self, line: str, style: str = "") -> None:
        line = self.mask(line)  # log tails may show what a stage printed
        if self.live is not None:
            self.console.print(line, style=style or None, markup=False, highlight=False)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __call__(self, event: Event) -> None:
        if event.kind == "plan":
            # The run has declared its secret names (ci.secrets) by now: look the
            # secrets up once, not once per line.
            self.mask = masker()
        elif event.kind == "start":
            self.running[event.stage] = time.monotonic()
            self._print(f"  {'running':<10} {event.stage:<{self.width}}  {event.message}")
        elif event.kind == "note":
            self._print(f"note: {event.message}")
        elif event.kind == "waiting":
            self._print(f"  {'waiting':<10} {event.stage:<{self.width}}  {event.message}")
        elif event.kind == "finish" and event.outcome is not None:
            self.running.pop(event.stage, None)
            self.done += 1
            bad = event.outcome.status in ("failed", "timeout", "budget")
            self._print(outcome_line(event.outcome, self.width), "bold red" if bad else "")
            for line in failure_lines(event.outcome):
                if self.group is not None:
                    self.deferred.append(line)
                else:
                    self._print(line, "red")
