"""Charts drawn on the server as SVG, so the pages show them without JavaScript.

Budget use per period and spend over time are simple bars; an SVG of a few
hundred bytes is lighter than a plot library's PNG and scales with the page.
(The run report's own plots, drawn with matplotlib by sluice.report.run, are
served as the PNG files the report wrote.)
"""

from __future__ import annotations

from html import escape

_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d")


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>" + "".join(body) + "</svg>")


def usage_bars(title: str, rows: list[tuple[str, float, str]]) -> str:
    """Horizontal bars of budget use: (label, fraction used, text), 100 % marked."""
    width, bar_w, left, row_h = 520, 300, 110, 26
    height = 10 + row_h * max(1, len(rows))
    body = []
    for i, (label, used, text) in enumerate(rows):
        y = 8 + i * row_h
        color = "#e45756" if used >= 1 else "#f58518" if used >= 0.8 else "#54a24b"
        body.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>'
                    f'<rect x="{left}" y="{y}" width="{bar_w}" height="18" fill="#eee"/>'
                    f'<rect x="{left}" y="{y}" width="{min(used, 1.0) * bar_w:.1f}" '
                    f'height="18" fill="{color}"/>'
                    f'<text x="{left + bar_w + 6}" y="{y + 14}" font-size="12">'
                    f"{escape(text)}</text>")
    body.append(f'<line x1="{left + bar_w}" y1="4" x2="{left + bar_w}" y2="{height - 2}" '
                'stroke="#333" stroke-dasharray="3,2"/>')
    return _svg(width, height, title, body)


def stacked_days(title: str, series: dict[str, list[float]], unit: str) -> str:
    """One stacked bar per day, a colour per series (tier), with a legend."""
    days = max((len(v) for v in series.values()), default=0)
    width, height, left, bottom = 620, 220, 50, 40
    plot_w, plot_h = width - left - 10, height - bottom - 10
    totals = [sum(v[d] for v in series.values()) for d in range(days)]
    top = max(totals, default=0.0) or 1.0
    step = plot_w / max(days, 1)
    body = [f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 10}" y2="{10 + plot_h}" '
            'stroke="#333"/>',
            f'<text x="0" y="16" font-size="11">{top:.3g}</text>'
            f'<text x="0" y="{10 + plot_h}" font-size="11">0 {escape(unit)}</text>']
    for d in range(days):
        base = 10.0 + plot_h
        for i, values in enumerate(series.values()):
            h = values[d] / top * plot_h
            if h <= 0:
                continue
            base -= h
            body.append(f'<rect x="{left + d * step + 1:.1f}" y="{base:.1f}" '
                        f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
                        f'fill="{_PALETTE[i % len(_PALETTE)]}"/>')
    for i, name in enumerate(series):
        x = left + i * 110
        body.append(f'<rect x="{x}" y="{height - 18}" width="10" height="10" '
                    f'fill="{_PALETTE[i % len(_PALETTE)]}"/><text x="{x + 14}" '
                    f'y="{height - 9}" font-size="11">{escape(name)}</text>')
    return _svg(width, height, title, body)


def burn_down(title: str, cumulative: list[float], cap: float, unit: str) -> str:
    """Spend so far, day by day through a budget's window, against its limit.

    The dashed diagonal is an even pace: above it, the budget runs out before the
    window ends.
    """
    width, height, left, bottom = 520, 200, 56, 24
    plot_w, plot_h = width - left - 10, height - bottom - 12
    top = max([cap, *cumulative]) or 1.0
    days = max(len(cumulative), 1)

    def x(day: float) -> float:
        return left + day / days * plot_w

    def y(value: float) -> float:
        return 12 + plot_h - value / top * plot_h

    points = " ".join(f"{x(d + 1):.1f},{y(v):.1f}" for d, v in enumerate(cumulative))
    body = [f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 10}" y2="{y(0):.1f}" '
            'stroke="#333"/>',
            f'<line x1="{left}" y1="{y(cap):.1f}" x2="{width - 10}" y2="{y(cap):.1f}" '
            'stroke="#e45756"/>',
            f'<text x="0" y="{y(cap) + 4:.1f}" font-size="11">{cap:.3g}</text>',
            f'<text x="0" y="{y(0):.1f}" font-size="11">0 {escape(unit)}</text>',
            f'<line x1="{x(0)}" y1="{y(0):.1f}" x2="{x(days):.1f}" y2="{y(cap):.1f}" '
            'stroke="#999" stroke-dasharray="4,3"/>',
            f'<polyline fill="none" stroke="#4c78a8" stroke-width="2" '
            f'points="{x(0)},{y(0):.1f} {points}"/>',
            f'<text x="{left}" y="{height - 6}" font-size="11">{days} days; today is the '
            "last point</text>"]
    return _svg(width, height, title, body)
