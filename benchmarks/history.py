"""Old figures next to new ones: what run_all.py keeps of the README.md it replaces.

The summary table gets a column with the previous run's figure for each row (matched
by the row's name), and the previous summary tables are kept, newest first, in a
section "Earlier runs" at the end, so a regression shows next to the run it follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SUMMARY = re.compile(r"^## Summary \((?P<date>[^)]*)\)\n", re.MULTILINE)
EARLIER_BEGIN = "<!-- run_all.py: earlier runs begin -->"
EARLIER_END = "<!-- run_all.py: earlier runs end -->"
KEEP = 6  # earlier summaries kept


@dataclass
class Previous:
    """The run README.md holds now: its date, commit, figures by row and older summaries."""

    label: str = ""  # "2026-12-06, git 7ac48fc"
    figures: dict[str, str] = field(default_factory=dict)  # benchmark -> "this run" cell
    summary: str = ""  # its summary table, as written
    earlier: list[str] = field(default_factory=list)  # older summaries, newest first


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table_after(text: str, start: int) -> list[str]:
    """The markdown table's lines that begin at or after ``start``."""
    lines = text[start:].splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if first is None:
        return []
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


def read_previous(readme: Path) -> Previous:
    """What ``readme`` (a README.md this script wrote) says of its run; empty if none."""
    text = readme.read_text() if readme.exists() else ""
    match = SUMMARY.search(text)
    if match is None:
        return Previous()
    table = _table_after(text, match.end())
    source = re.search(r"^\| sluice source +\| (?P<source>[^|]*?) *\|", text, re.MULTILINE)
    label = match["date"] + (f", {source['source']}" if source else "")
    figures: dict[str, str] = {}
    if len(table) > 2:
        headers = _cells(table[0])
        if "benchmark" in headers and "this run" in headers:
            name, result = headers.index("benchmark"), headers.index("this run")
            for line in table[2:]:
                cells = _cells(line)
                if len(cells) == len(headers):
                    figures[cells[name]] = cells[result]
    earlier: list[str] = []
    if EARLIER_BEGIN in text and EARLIER_END in text:
        block = text.split(EARLIER_BEGIN, 1)[1].split(EARLIER_END, 1)[0]
        earlier = [f"### {part.strip()}\n"
                   for part in re.split(r"^### ", block, flags=re.MULTILINE)[1:]]
    summary = f"### {label}\n\n" + "\n".join(table) + "\n" if table else ""
    return Previous(label, figures, summary, earlier)


def previous_column(previous: Previous, names: list[str]) -> tuple[str, list[str]]:
    """The header and cells of the "previous run" column for rows ``names``."""
    header = f"previous run ({previous.label})" if previous.label else "previous run"
    return header, [previous.figures.get(name, "–") for name in names]


def earlier_runs(previous: Previous) -> str:
    """The "Earlier runs" section: the replaced summary first, then the older ones."""
    kept = ([previous.summary] if previous.summary else []) + previous.earlier
    if not kept:
        return ""
    return "\n".join(["", "## Earlier runs", "",
                      "Summary tables of the runs before this one, newest first, as each run "
                      "wrote them (their figures were not rerun).", "",
                      EARLIER_BEGIN, "", *[k.rstrip() + "\n" for k in kept[:KEEP]],
                      EARLIER_END, ""])
