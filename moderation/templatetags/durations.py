"""``{% load durations %}{{ seconds|span }}``: a length of time as people read it, in the review
screen's format (static/review.js ``fmtSpan``): "6m 30s", "1h 54m", "2d 3h"."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def span(seconds: float | int | None) -> str:
    """A median handling time of 6838 s read as "6838 s": nobody counts hours in seconds."""
    if seconds is None:
        return ""
    s = abs(round(float(seconds)))
    h, m, sec = s // 3600, (s % 3600) // 60, s % 60
    if h >= 24:
        return f"{h // 24}d {h % 24}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m {sec:02d}s"
