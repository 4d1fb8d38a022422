"""Admin for review queues and the read-only audit log (the database refuses edits anyway)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from moderation.inference.models import Decision
from moderation.media.models import Video
from moderation.media.selectors import videos_open_to
from moderation.review.models import AuditEvent, ReviewQueue, ReviewSkip, ReviewTask
from moderation.review.selectors import (
    audit_events_open_to,
    audit_object_model,
    audit_payload_shown_to,
    audit_queue_slugs_hidden_from,
)
from moderation.review.services import review_queues_delete, review_queues_edited
from workbench.text import plain_name, row_id, shown_json, shown_text


class ReviewQueueAdminForm(forms.ModelForm):
    """A queue's name (on the queue list, every item's screen, the ops page, messages) and description are stored
    without invisible bidi controls or characters drawn as nothing (``plain_name``, ``shown_text``), as a policy's name is."""

    class Meta:
        model = ReviewQueue
        fields = "__all__"  # noqa: DJ007  (the admin edits every field; the form only cleans two)

    def clean_name(self) -> str:
        return plain_name(self.cleaned_data["name"]).strip()

    def clean_description(self) -> str:
        return shown_text(self.cleaned_data["description"]).strip()


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    form = ReviewQueueAdminForm
    list_display = [
        "name",
        "slug",
        "is_active",
        "priority",
        "sla_seconds",
        "required_reviews",
        "gold_rate",
        "model_version",
        # Which queue takes new decisions and where each escalates: a senior queue was set up blind on the list.
        "routes_new_decisions",
        "escalation_queue",
    ]
    list_filter = ["is_active", "routes_new_decisions"]
    list_select_related = ["model_version", "escalation_queue"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["allowed_groups"]
    search_fields = ["name", "slug"]
    autocomplete_fields = ["policy", "model_version", "escalation_queue", "adjudication_queue"]

    # An edit or a delete can leave an item routing owed a queue never made (its model removed, the queue made
    # inactive or given other filters or groups): the decisions it awaited are routed again in the same
    # transaction (the admin's save and delete are atomic), so no video stays closed waiting for it.
    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # the groups too: whether the queue is restricted
        if change:
            queue = form.instance
            self._say_rerouted(request, review_queues_edited(queue_ids=[queue.pk], reason=f"queue {queue.slug} edited"))

    def delete_model(self, request: HttpRequest, obj: ReviewQueue) -> None:
        self._say_rerouted(request, review_queues_delete(queue_ids=[obj.pk]))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ReviewQueue]) -> None:
        self._say_rerouted(request, review_queues_delete(queue_ids=list(queryset.values_list("pk", flat=True))))

    def _say_rerouted(self, request: HttpRequest, count: int) -> None:
        if count:
            self.message_user(
                request,
                f"{count} decision{'s' if count != 1 else ''} waiting for this queue's model "
                f"{'were' if count != 1 else 'was'} routed again as the queues say now (the audit log says where).",
            )


admin.site.unregister(Group)


@admin.register(Group)
class GroupWithQueuesAdmin(GroupAdmin):
    """Deleting a group can leave a queue restricted to it open to every reviewer: the items such a queue awaits
    are routed again in the same transaction (``review_queues_edited``), so no video stays closed for them."""

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        self.delete_queryset(request, Group.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        with transaction.atomic():  # the changelist's bulk delete runs outside the admin's own transaction
            queues = ReviewQueue.objects.filter(allowed_groups__in=queryset).values_list("pk", flat=True)
            queue_ids, names = list(queues.distinct()), ", ".join(queryset.values_list("name", flat=True))
            queryset.delete()
            review_queues_edited(queue_ids=queue_ids, reason=f"group deleted: {names}")


# The video of a row a change form may point at, for each kind of row with a video of its own.
_VIDEO_OF = {Video: "pk", Decision: "video_id", ReviewTask: "decision__video_id"}


class VideosOpenToStaffAdmin(admin.ModelAdmin):
    """Lists and opens only rows of videos the staff member may see (``videos_open_to``: a video in a
    restricted queue is its groups' and admins'); ``video_field`` names the row's video id.

    A change form chooses a video, decision or review item by search (``autocomplete_fields``: the admin of
    that model answers, with its own narrowed list), never from a <select> of every row: 100k options, and
    each one's name would be a hidden video's. A typed number finds the row with that id."""

    video_field = "video_id"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return videos_open_to(user=request.user, qs=super().get_queryset(request), field=self.video_field)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # ``row_id``: "²" passed ``str.isdigit()`` and ``int()`` refused it (a 500 on the admin's search).
        if (pk := row_id(search_term)) is not None:
            found = found | queryset.filter(pk=pk)
        return found, may_have_duplicates

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Only rows of videos open to the user may be chosen, shown as chosen, or posted by id.
        field = _VIDEO_OF.get(db_field.related_model)
        if field is not None:
            rows = db_field.related_model._default_manager.all()
            kwargs["queryset"] = videos_open_to(user=request.user, qs=rows, field=field)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReviewSkipAdminForm(forms.ModelForm):
    """A skip's reason, read on the item's screen by the reviewer who comes back to it, is stored without invisible
    bidi controls (``shown_text``), as the skip itself stores it."""

    class Meta:
        model = ReviewSkip
        fields = "__all__"  # noqa: DJ007  (the admin edits every field; the form only cleans the reason)

    def clean_reason(self) -> str:
        return shown_text(self.cleaned_data["reason"]).strip()


@admin.register(ReviewSkip)
class ReviewSkipAdmin(VideosOpenToStaffAdmin):
    form = ReviewSkipAdminForm
    video_field = "task__decision__video_id"
    autocomplete_fields = ["task", "user"]
    list_display = ["task", "user", "reason", "at"]
    search_fields = ["reason", "user__username"]


class ActorNameListFilter(admin.AllValuesFieldListFilter):
    """The audit log's "By actor name" filter. Events no user caused (beat, a worker, a platform's call) have an
    empty ``actor_name``, which Django's filter listed as a link with no text at all (axe: link-name); it is
    named here instead."""

    NO_USER = "no user (the system: beat, a worker, a platform)"

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice["display"] == "" or str(choice["display"]).startswith(" ("):  # "" or " (3)" with facets
                choice = {**choice, "display": self.NO_USER + str(choice["display"])}
            yield choice


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_link"]
    list_filter = ["action", "object_type", "at", ("actor_name", ActorNameListFilter)]
    search_fields = ["actor_name", "object_id", "action"]
    date_hierarchy = "at"
    fields = ("actor", "actor_name", "action", "object_type", "object_id", "object_link", "payload_shown", "at")
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_shown(self, event: AuditEvent) -> str:
        """The payload as JSON, without invisible bidi controls in its text (``shown_json``): the log is append-only,
        so a reason or name recorded before text was stored clean stays as it was written, and "refund \u202e0011
        2233" would read here as another number."""
        return json.dumps(shown_json(event.payload), ensure_ascii=False)

    @admin.display(description="object")
    def object_link(self, event: AuditEvent) -> str:
        """Its object's admin page; "(deleted)" in place of the link once the row is gone (only those who see
        every video read such an event: ``audit_events_open_to``)."""
        if not event.object_type:
            return "—"
        label = f"{event.object_type} #{event.object_id}"
        if getattr(event, "object_deleted", False):
            return f"{label} (deleted)"
        model = audit_object_model(object_type=event.object_type)
        if model is not None and self.admin_site.is_registered(model):
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[event.object_id])
            return format_html('<a href="{}">{}</a>', url, label)
        return label

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        """Without the events about a video hidden from the staff member (``audit_events_open_to``): left
        out of the list, and opening one by its address is the admin's "does not exist" redirect."""
        return audit_events_open_to(user=request.user, qs=super().get_queryset(request))

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        """The event as this staff member reads it: a restricted queue they may not see is not named by its slug in
        the payload (``audit_payload_shown_to``), as no screen names it to them. Read-only: never saved."""
        event = super().get_object(request, object_id, from_field)
        if event is not None:
            hidden = audit_queue_slugs_hidden_from(user=request.user)
            event.payload = audit_payload_shown_to(event.payload, hidden=hidden)
        return event
