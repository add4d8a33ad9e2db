"""``sluice metrics diff``: each model's metrics at two revisions, with paired intervals."""

from __future__ import annotations

from typing import Any

import typer

from sluice.cli.output import echo, print_json
from sluice.cli.revisions import JsonFlag, NewRevision, OldRevision, command_group


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def print_comparison(comparison: Any) -> None:
    echo(f"{comparison.model}: {comparison.old.label} → {comparison.new.label} "
         f"({comparison.method})")
    for side in (comparison.old, comparison.new):
        if side.reason:
            echo(f"  {side.label}: {side.reason}")
    if comparison.rows:
        width = max(6, *(len(r.metric) for r in comparison.rows))
        echo(f"  {'metric':<{width}}  {'old':>8}  {'new':>8}  {'delta':>8}  interval")
        for row in comparison.rows:
            interval = ("" if row.low is None or row.high is None else
                        f"[{_num(row.low, True)}, {_num(row.high, True)}]")
            echo(f"  {row.metric:<{width}}  {_num(row.old):>8}  {_num(row.new):>8}  "
                 f"{_num(row.delta, True):>8}  {interval}")
    echo(f"  verdict: {comparison.old.verdict or '–'} → {comparison.new.verdict or '–'}")
    for note in comparison.notes:
        echo(f"  note: {note}")


def register(app: typer.Typer) -> None:
    metrics_app = command_group(app, "metrics", "Metrics: compare each model between revisions.")

    @metrics_app.command("diff")
    def diff(
        old: OldRevision = None,
        new: NewRevision = None,
        as_json: JsonFlag = False,
    ) -> int:
        """Compare each model's metrics and verdicts between two revisions.

        A revision's model is the latest registry version registered from it or its
        history; the working tree's is what its evaluate stage recorded for the
        fingerprint it has now. Deltas come with paired bootstrap intervals when
        both sides have stored predictions on the same test set, else point values.
        Exit 0 whether or not anything changed.

        Examples:

          sluice metrics diff                 # the base branch against the working tree

          sluice metrics diff main HEAD --json
        """
        from sluice.evaluate.compare import metrics_diff
        from sluice.workspace.project import load_project

        comparisons = metrics_diff(load_project(), old, new)
        if as_json:
            print_json([c.to_json() for c in comparisons])
        elif not comparisons:
            echo("no models in sluice.yaml")
        for comparison in [] if as_json else comparisons:
            print_comparison(comparison)
        return 0

