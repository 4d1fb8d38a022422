"""How the screens write numbers that measure a model or its reviewers: one home, so every page agrees."""

from __future__ import annotations

import math
from typing import Any

# Accuracy, precision, recall, F1, kappa, agreement, loss, reward: three decimals everywhere (the job page
# said 4, the model versions screen 3, the evaluation page 4, so one run's accuracy read as two numbers).
METRIC_DECIMALS = 3
MISSING = "—"


def metric_text(value: Any, missing: str = MISSING) -> str:
    """``value`` to :data:`METRIC_DECIMALS` places ("0.917"); ``missing`` for None or an empty value; a
    value that is not a number (a bool, a word, NaN) as it is, so nothing is hidden behind a format."""
    number = _finite_number(value)
    if isinstance(number, str):
        return number or missing
    text = f"{number:.{METRIC_DECIMALS}f}"
    return text[1:] if text == f"-{0:.{METRIC_DECIMALS}f}" else text  # "-0.000" reads as a drop


def percent_text(value: Any, missing: str = MISSING) -> str:
    """A share or an accuracy (0–1) as a percentage to one decimal ("74.3%"): for measures shown beside axes,
    targets and tables in percent, where a bare 0.743 read as another unit. ``missing`` for None or an empty
    value; a value that is not a finite number as it is."""
    number = _finite_number(value)
    if isinstance(number, str):
        return number or missing
    text = f"{number * 100:.1f}"
    return f"{'0.0' if text == '-0.0' else text}%"


def _finite_number(value: Any) -> float | str:
    """``value`` as a finite float to format, else the text to show instead: "" for None or an empty value (the
    caller's ``missing``), a bool lower-cased, anything that is not a finite number as it is."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else str(value)
