"""What to export of the tag reviews: the filter shared by the Label Studio export (annotation) and
the tag-events dataset download (training), so both read a tag set and a day range the same way."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from moderation.tagging.models import TagSet
from workbench.forms import NulCheckedForm

DAY = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATE_ERRORS = {"invalid": "Not a date: write it as YYYY-MM-DD, e.g. 2026-01-31."}


class DayRangeForm(NulCheckedForm, forms.Form):
    """A day range, both ends included, in the workbench's time zone; either end may be left open."""

    since = forms.DateField(required=False, label="From", error_messages=DATE_ERRORS, widget=DAY)
    until = forms.DateField(required=False, label="To", error_messages=DATE_ERRORS, widget=DAY)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError(
                f"“{self.fields['since'].label}” ({since:%Y-%m-%d}) is after "
                f"“{self.fields['until'].label}” ({until:%Y-%m-%d}): swap them."
            )
        return data

    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``[since 00:00, the day after until 00:00)`` as aware datetimes (None: open on that side)."""
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        start = timezone.make_aware(dt.datetime.combine(since, dt.time.min)) if since else None
        # The last day of year 9999 has no next day: the range is open there, not an OverflowError.
        end = (
            timezone.make_aware(dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min))
            if until and until < dt.date.max
            else None
        )
        return start, end


class TagSetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: TagSet) -> str:  # type: ignore[override]
        return obj.name if obj.tags.exists() else f"{obj.name} (every tag)"


class TagExportFilterForm(DayRangeForm):
    """A tag set (its tags only; a set that lists none means every tag) and a day range."""

    tag_set = TagSetChoiceField(
        queryset=TagSet.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        empty_label="Every tag",
        error_messages={"invalid_choice": "That tag set does not exist (any more): choose one from the list."},
    )
    field_order = ["tag_set", "since", "until"]

    def tag_ids(self) -> list[int] | None:
        """The chosen set's tags; None for every tag (no set, or a set that lists none)."""
        tag_set = self.cleaned_data.get("tag_set")
        if tag_set is None:
            return None
        return list(tag_set.tags.values_list("pk", flat=True)) or None
