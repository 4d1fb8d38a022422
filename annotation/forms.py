"""Forms of the annotation screens."""

from __future__ import annotations

from django import forms

from annotation.labelstudio import TagVideos
from moderation.review.models import ReviewQueue
from moderation.tagging.forms import DayRangeForm, TagExportFilterForm

BASE_URL_HELP = "where Label Studio fetches the videos: the workbench's address as Label Studio reaches it"


class LabelStudioTagExportForm(TagExportFilterForm):
    """Videos to tag in Label Studio (``Taxonomy``), reviewed or awaiting review."""

    which = forms.ChoiceField(
        choices=TagVideos.CHOICES,
        initial=TagVideos.REVIEWED,
        label="Videos",
        error_messages={"invalid_choice": "Choose which videos: reviewed, awaiting review, or both."},
    )
    base_url = forms.URLField(
        label="Media address",
        help_text=BASE_URL_HELP,
        max_length=500,
        assume_scheme="https",
        error_messages={"invalid": "Not a web address: write it as http://host:port or https://host."},
    )


class LabelStudioQueueExportForm(DayRangeForm):
    """A review queue's open items, to label in Label Studio (``Choices`` over the policy's labels)."""

    queue = forms.ModelChoiceField(
        queryset=ReviewQueue.objects.filter(kind=ReviewQueue.Kind.MODERATION).order_by("name"),
        to_field_name="slug",
        empty_label=None,
        error_messages={"invalid_choice": "That review queue does not exist (any more): choose one from the list."},
    )
    base_url = forms.URLField(
        label="Media address",
        help_text=BASE_URL_HELP,
        max_length=500,
        assume_scheme="https",
        error_messages={"invalid": "Not a web address: write it as http://host:port or https://host."},
    )

    field_order = ["queue", "since", "until", "base_url"]

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["since"].label, self.fields["until"].label = "Decided from", "Decided to"
