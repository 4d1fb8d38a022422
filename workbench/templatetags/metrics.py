"""``{% load metrics %}{{ value|metric }}``: a model's or reviewers' measure (accuracy, recall, F1, kappa,
loss...) to three decimals, the way every screen writes it (:func:`workbench.formatting.metric_text`);
``{{ value|metric:"n/a" }}`` names what to show for a missing value ("—" by default).
``{{ value|percent }}``: the same measure in percent ("74.3%"), where the screen around it speaks in percent."""

from __future__ import annotations

from typing import Any

from django import template

from workbench.formatting import MISSING, metric_text, percent_text

register = template.Library()


@register.filter
def metric(value: Any, missing: str = MISSING) -> str:
    return metric_text(value, missing)


@register.filter
def percent(value: Any, missing: str = MISSING) -> str:
    return percent_text(value, missing)
