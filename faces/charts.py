"""Charts as SVG, written by hand: no plotting library, opens in any browser.

An operations manager reads service level per day against its target, with abandonment
beside it: one bar per day (service level, green when on target, amber below), the target
as a dashed line, and abandonment as a red line with a dot per day, both on one 0-100 %
scale, with the days along the bottom.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from projections.service_levels import Figures, ratio

WIDTH, HEIGHT = 960, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 48


def service_level_chart(days: Sequence[Figures], target: float, title: str) -> str:
    """An SVG document: service level (bars) and abandonment (line) per group (day)."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    count = max(len(days), 1)
    step = plot_w / count
    bar_w = max(step * 0.7, 1.0)

    def y(share: float) -> float:
        return TOP + plot_h * (1 - share)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
        )
    points: list[str] = []
    label_every = max(1, round(count / 12))
    for index, day in enumerate(days):
        x = LEFT + index * step
        level = ratio(day.answered_in_time, day.offered)
        abandonment = ratio(day.abandoned, day.offered)
        if level is not None:
            colour = "#2e7d32" if level >= target else "#f9a825"
            parts.append(
                f'<rect class="service-level" x="{x + (step - bar_w) / 2:.1f}" '
                f'y="{y(level):.1f}" width="{bar_w:.1f}" height="{plot_h * level:.1f}" '
                f'fill="{colour}"><title>{escape(day.group)}: service level {level:.1%}, '
                f"{day.offered} offered</title></rect>"
            )
        if abandonment is not None:
            cx, cy = x + step / 2, y(abandonment)
            points.append(f"{cx:.1f},{cy:.1f}")
            parts.append(
                f'<circle class="abandonment" cx="{cx:.1f}" cy="{cy:.1f}" r="2" fill="#c62828">'
                f"<title>{escape(day.group)}: abandoned {abandonment:.1%}</title></circle>"
            )
        if index % label_every == 0:
            label = day.group[5:] if len(day.group) == 10 else day.group  # 2025-06-01: 06-01
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    if points:
        parts.append(
            f'<polyline class="abandonment" points="{" ".join(points)}" fill="none" '
            'stroke="#c62828" stroke-width="1.5"/>'
        )
    parts += [
        f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(target):.1f}" '
        f'y2="{y(target):.1f}" stroke="#1565c0" stroke-dasharray="6 4"/>',
        f'<text x="{WIDTH - RIGHT}" y="{y(target) - 4:.1f}" text-anchor="end" fill="#1565c0">'
        f"target {target:.0%}</text>",
        f'<g transform="translate({LEFT},{HEIGHT - 12})">'
        '<rect width="10" height="10" y="-9" fill="#2e7d32"/>'
        '<text x="14">service level (answered in time / offered)</text>'
        '<rect x="280" width="10" height="10" y="-9" fill="#c62828"/>'
        '<text x="294">abandonment (abandoned / offered)</text></g>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
