"""The one reading of a number typed into a form (workbench/numbers.py) and the form field built on it."""

from __future__ import annotations

import math

import pytest
from django.core.exceptions import ValidationError

from workbench.numbers import typed_number


@pytest.mark.parametrize(
    ("raw", "number"),
    [("0.9", 0.9), ("0,9", 0.9), (" 0,15 ", 0.15), ("92,5", 92.5), (",5", 0.5), ("2e-5", 2e-5), ("3", 3.0)],
)
def test_a_number_as_typed_with_a_dot_or_one_decimal_comma(raw: str, number: float) -> None:
    assert typed_number(raw) == number


@pytest.mark.parametrize("raw", ["", " ", "lots", "1,000.5", "0,1,2", "1.000,5", "1_000", "nan", "0,9%"])
def test_what_is_no_number_or_would_be_a_guess_is_refused(raw: str) -> None:
    assert typed_number(raw) is None


def test_numbers_from_code_pass_and_an_overflow_is_infinite_for_the_range_check() -> None:
    assert typed_number(0.5) == 0.5 and typed_number(3) == 3.0
    assert typed_number(True) is None and typed_number(None) is None and typed_number(float("nan")) is None
    assert typed_number("1e400") == math.inf


def test_the_training_forms_read_a_decimal_comma() -> None:
    from training.forms import TrainingJobStartForm

    field = TrainingJobStartForm.base_fields["lora_dropout"]
    assert field.clean("0,1") == 0.1 and field.clean("") is None
    for bad in ("0,1,2", "1e400"):
        with pytest.raises(ValidationError, match="number"):
            field.clean(bad)
