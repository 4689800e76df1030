"""The buyer page's grade-and-PD chart as inline SVG coordinates, drawn on the server: no
JavaScript, no image files, crisp at any zoom, and nothing a page must fetch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 44, 14, 30
PD_TICKS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


@dataclass(frozen=True)
class Chart:
    """What the template draws: a PD line (log scale, left axis), the grade as a step line
    (right axis, 1 at the bottom, like low PDs), axis ticks and a label per point for the
    tooltip."""

    width: int = WIDTH
    height: int = HEIGHT
    pd_line: str = ""
    grade_line: str = ""
    dots: list[dict[str, Any]] = field(default_factory=list)
    pd_ticks: list[dict[str, Any]] = field(default_factory=list)
    grade_ticks: list[dict[str, Any]] = field(default_factory=list)
    date_ticks: list[dict[str, Any]] = field(default_factory=list)


def _log_y(value: float, low: float, high: float) -> float:
    span = math.log10(high) - math.log10(low)
    share = (math.log10(min(max(value, low), high)) - math.log10(low)) / span
    return TOP + (1 - share) * (HEIGHT - TOP - BOTTOM)


def history_chart(points: list[dict[str, Any]]) -> Chart | None:
    """The chart of `points` (date, pd, grade; oldest first), or None without any."""
    if not points:
        return None
    pds = [p["pd"] for p in points]
    low = min(PD_TICKS[0], min(pds) * 0.8)
    high = max(0.02, max(pds) * 1.25)
    plot_w = WIDTH - LEFT - RIGHT
    step = plot_w / max(1, len(points) - 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(points) > 1 else plot_w / 2)

    def grade_y(grade: int) -> float:  # grade 10 at the top: both lines rise with the risk
        return TOP + (10 - grade) / 9 * (HEIGHT - TOP - BOTTOM)

    pd_line = " ".join(f"{x(i):.1f},{_log_y(p['pd'], low, high):.1f}" for i, p in enumerate(points))
    steps: list[str] = []
    for i, p in enumerate(points):
        y = grade_y(p["grade"])
        if i:
            steps.append(f"{x(i):.1f},{grade_y(points[i - 1]['grade']):.1f}")
        steps.append(f"{x(i):.1f},{y:.1f}")
    every = max(1, len(points) // 6)
    return Chart(
        pd_line=pd_line,
        grade_line=" ".join(steps),
        dots=[
            {
                "x": round(x(i), 1),
                "y": round(_log_y(p["pd"], low, high), 1),
                "label": f"{p['date']}: PD {100 * p['pd']:.2f} %, grade {p['grade']}",
            }
            for i, p in enumerate(points)
        ],
        pd_ticks=[
            {"y": round(_log_y(t, low, high), 1), "label": f"{100 * t:g} %"}
            for t in PD_TICKS
            if low <= t <= high
        ],
        grade_ticks=[{"y": round(grade_y(g), 1), "label": str(g)} for g in (1, 3, 5, 7, 9, 10)],
        date_ticks=[
            {"x": round(x(i), 1), "label": str(points[i]["date"])[5:]}
            for i in range(0, len(points), every)
        ],
    )
