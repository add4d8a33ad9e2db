"""``sluice budget``: spend per tier and period against each budget."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.output import echo, print_json


def register(app: typer.Typer) -> None:
    @app.command("budget")
    def budget(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> int:
        """Show what each tier spent (last day, week, month) and each budget's use.

        Spend comes from the ledger: every stage execution with its wall time,
        allocated CPU- and GPU-hours and cost (see `prices:` in sluice.yaml).

        Examples:

          sluice budget

          sluice budget --json | jq '.periods[] | select(.used.usd > 0.8)'
        """
        from sluice.pipeline.budget import UNITS, fmt
        from sluice.report.budget import budget_report
        from sluice.workspace.project import load_project

        report = budget_report(load_project())
        if as_json:
            print_json(report.to_json())
            return 0
        if report.future_rows:
            echo(f"warning: {report.future_rows} ledger run(s) are dated in the future: the "
                 "clock went backwards; they count in every window until the clock catches up")
        echo("period budgets:" if report.periods else "no period budgets (`budgets:` in "
                                                       "sluice.yaml)")
        for period in report.periods:
            scope = ", ".join(period.tiers) if period.tiers else "all tiers"
            echo(f"  {period.name} (last {period.window_s / 86400:g} days, {scope}, "
                 f"{period.spent.runs} runs)")
            for unit in UNITS:
                cap = period.limits.get(unit)
                if cap is None:
                    continue
                used = period.fraction_used(unit) or 0.0
                value = period.spent.get(unit)
                bar = "#" * min(20, round(used * 20))
                echo(f"    {unit.replace('_', '-'):<10} {fmt(unit, value):>14} of "
                     f"{fmt(unit, cap):<14} {used:>6.0%} [{bar:<20}]")
        echo("spend per tier:")
        header = f"  {'tier':<14} {'window':<8} {'runs':>5} {'wall':>14} {'cpu-hours':>10} " \
                 f"{'gpu-hours':>10} {'usd':>10}"
        echo(header)
        for tier, windows in report.tiers.items():
            for window in ("daily", "weekly", "monthly"):
                spent = windows.get(window)
                if spent is None:
                    continue
                echo(f"  {tier:<14} {window:<8} {spent.runs:>5} {fmt('wall', spent.wall):>14} "
                     f"{spent.cpu_hours:>10.2f} {spent.gpu_hours:>10.2f} {spent.usd:>10.2f}")
            if not windows:
                echo(f"  {tier:<14} {'-':<8} {0:>5}  (no runs recorded)")
        return 0
