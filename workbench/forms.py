"""What the workbench's forms share: text with a NUL character is a field error, not a refused page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError

from workbench.numbers import typed_number

NUL_FIELD_ERROR = "This contains a NUL character (\\x00), which text may not hold; remove it and try again."

View = TypeVar("View", bound=Callable[..., Any])


class NulCheckedForm:
    """Mixin (before ``forms.Form``) for every form of the workbench: a field whose submitted text holds a NUL
    character (PostgreSQL's text cannot) gets ``NUL_FIELD_ERROR`` in place of its own errors ("Select a valid
    choice", "Null characters are not allowed"), so the page comes back with the form as typed and the reason
    on that field. The views that validate through such a form say so (``nul_checked_by_form``): the request
    check (``RejectNulMiddleware``) then leaves NUL to them."""

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        form: Any = self
        if not form.is_bound:
            return
        for name, field in form.fields.items():
            raw = field.widget.value_from_datadict(form.data, form.files, form.add_prefix(name))
            values = raw if isinstance(raw, list | tuple) else [raw]
            if any(isinstance(value, str) and "\x00" in value for value in values):
                form._errors[name] = form.error_class([NUL_FIELD_ERROR])
                form.cleaned_data.pop(name, None)


def nul_checked_by_form(view: View) -> View:
    """Mark a view whose input is all validated by ``NulCheckedForm`` forms (outermost decorator)."""
    view.nul_checked_by_form = True  # type: ignore[attr-defined]
    return view


class TypedNumberField(forms.FloatField):
    """A float field that reads what was typed as every numeric box of the workbench does
    (``workbench.numbers.typed_number``: "0,1" is 0.1); Django's own field refused a decimal comma."""

    def to_python(self, value: Any) -> float | None:  # type: ignore[override]  # FloatField returns floats too
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        number = typed_number(value)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number
