"""The live view of a run: what it draws, in a terminal and elsewhere."""

from __future__ import annotations

import io
import time

from rich.console import Console

from sluice.cli.progress import Progress


def test_the_live_view_shows_no_markup_when_redrawn_under_plain_lines() -> None:
    # Lines are printed with markup=False, and the live view is redrawn with them:
    # markup strings in its cells came out as raw "[dim]1.2 s[/]".
    progress = Progress(["train[gpu]"], stream=io.StringIO())
    progress.running["train[gpu]"] = time.monotonic()
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=80).print(progress._view(), markup=False)
    text = out.getvalue()
    assert "[dim]" not in text and "[/]" not in text
    assert "train[gpu]" in text and "0/1 stages settled" in text


def test_outside_a_terminal_lines_are_plain() -> None:
    stream = io.StringIO()
    with Progress(["a"], stream=stream) as progress:
        progress._print("  ran        a  1.0 s", "bold red")
    assert stream.getvalue() == "  ran        a  1.0 s\n"
