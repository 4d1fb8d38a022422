"""Server-rendered SVG charts: geometry computed here, drawn by the template (no JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PALETTE = ("#2451c7", "#b3261e", "#1e7b34", "#a35c00", "#6b3fa0", "#00838f", "#5d6470", "#c2185b")
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 640, 170, 44, 10, 10, 26


@dataclass
class Chart:
    kind: str  # "line" or "bar"
    width: int = WIDTH
    height: int = HEIGHT
    series: list[dict[str, Any]] = field(default_factory=list)
    bars: list[dict[str, Any]] = field(default_factory=list)
    y_ticks: list[dict[str, Any]] = field(default_factory=list)
    x_ticks: list[dict[str, Any]] = field(default_factory=list)
    empty: bool = False


def _y_max(values: list[float], fixed: float | None) -> float:
    if fixed is not None:
        return fixed
    top = max([v for v in values if v is not None] or [0.0])
    return top if top > 0 else 1.0


def _tick_label(value: float) -> str:
    """The value a gridline stands for, as written: 2.5 is "2.5" (not "2"), 0.05 is "0.05" (not "0.1", which
    would repeat the top's label); whole numbers and large values without decimals."""
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _ticks(chart: Chart, top: float, labels: list[str], percent: bool) -> None:
    plot_h = chart.height - PAD_T - PAD_B
    for i in range(3):
        value = top * i / 2
        chart.y_ticks.append(
            {
                "y": round(PAD_T + plot_h - plot_h * i / 2, 1),
                "label": f"{value:.0%}" if percent else _tick_label(value),
            }
        )
    n = len(labels)
    step = max(1, n // 6)
    plot_w = chart.width - PAD_L - PAD_R
    if chart.kind == "bar":
        for i in range(0, n, step):
            chart.x_ticks.append({"x": round(PAD_L + plot_w * (i + 0.5) / n, 1), "label": labels[i], "end": False})
        return
    # A line chart's ticks count back from its last point, so the latest hour or day (the one an operator looks
    # for) is always labelled; that label ends at the right edge instead of being cut there.
    for i in sorted(range(n - 1, -1, -step)):
        x = PAD_L + plot_w * i / max(1, n - 1)
        chart.x_ticks.append({"x": round(x, 1), "label": labels[i], "end": i == n - 1 and n > 1})


def line_chart(
    labels: list[str], series: dict[str, list[float | None]], *, y_max: float | None = None, percent: bool = False
) -> Chart:
    """One polyline per series; a None value breaks the line (no data that day)."""
    chart = Chart(kind="line")
    values = [v for vs in series.values() for v in vs if v is not None]
    if not labels or not values:
        chart.empty = True
        return chart
    top = _y_max(values, y_max)
    plot_w, plot_h = chart.width - PAD_L - PAD_R, chart.height - PAD_T - PAD_B
    n = len(labels)
    for k, (name, vs) in enumerate(series.items()):
        segments: list[list[str]] = [[]]
        dots = []
        for i, v in enumerate(vs):
            if v is None:
                segments.append([])
                continue
            x = PAD_L + (plot_w * i / max(1, n - 1))
            y = PAD_T + plot_h - plot_h * min(v, top) / top
            segments[-1].append(f"{x:.1f},{y:.1f}")
            dots.append({"x": round(x, 1), "y": round(y, 1), "label": labels[i], "value": v})
        chart.series.append(
            {
                "name": name,
                "color": PALETTE[k % len(PALETTE)],
                "lines": [" ".join(s) for s in segments if s],
                "dots": dots,
            }
        )
    _ticks(chart, top, labels, percent)
    return chart


def bar_chart(labels: list[str], values: list[float], *, color: str = PALETTE[0]) -> Chart:
    chart = Chart(kind="bar")
    if not labels or not any(values):
        chart.empty = True
        return chart
    top = _y_max(values, None)
    plot_w, plot_h = chart.width - PAD_L - PAD_R, chart.height - PAD_T - PAD_B
    slot = plot_w / len(labels)
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * v / top
        chart.bars.append(
            {
                "x": round(PAD_L + slot * i + slot * 0.1, 1),
                "y": round(PAD_T + plot_h - h, 1),
                "w": round(slot * 0.8, 1),
                "h": round(h, 1),
                "label": label,
                "value": v,
                "color": color,
            }
        )
    _ticks(chart, top, labels, False)
    return chart
