"""A number as a person typed it into a form, read in one place (the tag set's thresholds and suggestion count, the
cascade's target accuracy and escalation threshold, the training forms' numbers)."""

from __future__ import annotations

import math


def typed_number(raw: object) -> float | None:
    """``raw`` (a form's text, or a number code passes) as a finite float; None when it is no number.

    Spaces around it are dropped, and a comma is read as the decimal separator where that is unambiguous: one
    comma and no dot ("0,9" is 0.9, as many keyboards and locales write it; it was refused as "not a number").
    "1,000.5" or "1,2,3" stay refused rather than guessed. Python's other spellings a person does not type as a
    number ("1_000" digit groups, "nan") are refused too. A number too large for a float ("1e400") is ±inf, so that
    a range check refuses it naming what was typed; callers wanting finite numbers check ``math.isfinite``."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        number = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        if "_" in text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number
