"""Forms of the annotation screens."""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth.models import AnonymousUser, User

from annotation.labelstudio import TagVideos, labelstudio_export_queues
from moderation.review.models import ReviewQueue
from moderation.tagging.forms import DayRangeForm, TagExportFilterForm

BASE_URL_HELP = "where Label Studio fetches the videos: the workbench's address as Label Studio reaches it"


class MediaAddressField(forms.CharField):
    """An http(s) address with a host, any host: Label Studio often reaches the workbench by a service
    name without a dot (``http://workbench:8000``), which Django's URL validator refuses."""

    def __init__(self) -> None:
        super().__init__(label="Media address", help_text=BASE_URL_HELP, max_length=500)

    def clean(self, value: object) -> str:
        address = super().clean(value).strip().rstrip("/")
        refused = forms.ValidationError("Not a web address: write it as http://host:port or https://host.")
        try:
            parts = urlsplit(address)  # "http://[::1" (a bracket left open): ValueError "Invalid IPv6 URL", a 500
        except ValueError as exc:
            raise refused from exc
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or not port_ok
            or any(c.isspace() for c in address)
        ):
            raise refused
        return address


class LabelStudioTagExportForm(TagExportFilterForm):
    """Videos to tag in Label Studio (``Taxonomy``), reviewed or awaiting review."""

    which = forms.ChoiceField(
        choices=TagVideos.CHOICES,
        initial=TagVideos.REVIEWED,
        label="Videos",
        error_messages={"invalid_choice": "Choose which videos: reviewed, awaiting review, or both."},
    )
    base_url = MediaAddressField()


class LabelStudioQueueExportForm(DayRangeForm):
    """A review queue's open items, to label in Label Studio (``Choices`` over the policy's labels)."""

    queue = forms.ModelChoiceField(
        queryset=ReviewQueue.objects.none(),  # the user's: see __init__
        to_field_name="slug",
        empty_label=None,
        error_messages={"invalid_choice": "That review queue does not exist (any more): choose one from the list."},
    )
    base_url = MediaAddressField()

    field_order = ["queue", "since", "until", "base_url"]

    def __init__(self, *args, user: User | AnonymousUser, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["since"].label, self.fields["until"].label = "Decided from", "Decided to"
        # Only the moderation queues the user may see: a group-restricted or inactive queue is refused as
        # one that does not exist (its items, titles and model labels are not for everyone).
        field = cast(forms.ModelChoiceField, self.fields["queue"])  # type: ignore[type-arg]
        field.queryset = labelstudio_export_queues(user=user)
