"""Integration pages (admins): integrations, webhook endpoints, per-endpoint delivery log with redeliver."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from moderation.errors import ModerationError
from moderation.integrations.models import EventType, Integration, WebhookDelivery, WebhookEndpoint
from moderation.integrations.selectors import integrations_overview, webhook_delivery_log
from moderation.integrations.services import integration_create
from moderation.integrations.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
    webhook_redeliver,
)
from workbench.roles import Perm, permission_required


@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "moderation/integrations/list.html",
        {"integrations": integrations_overview(), "event_types": EventType.choices},
    )


@require_POST
@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_add(request: HttpRequest) -> HttpResponse:
    try:
        integration, token = integration_create(
            name=request.POST.get("name", ""), rate_limit=request.POST.get("rate_limit", "")
        )
    except ModerationError as exc:
        messages.error(request, str(exc))
        return redirect("moderation:integration_list")
    # Shown once: only its hash is stored.
    return render(request, "moderation/integrations/token.html", {"integration": integration, "token": token})


@require_POST
@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_add(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    try:
        endpoint, _secret = webhook_endpoint_create(
            integration=integration,
            url=request.POST.get("url", ""),
            event_types=request.POST.getlist("event_types"),
            only_own_videos=request.POST.get("only_own_videos") == "on",
        )
    except ModerationError as exc:
        messages.error(request, str(exc))
        return redirect("moderation:integration_list")
    messages.success(request, "Endpoint added. Its signing secret is on its page.")
    return redirect("moderation:webhook_endpoint", pk=endpoint.pk)


@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint.objects.select_related("integration"), pk=pk)
    status = request.GET.get("status", "")
    if status not in WebhookDelivery.Status.values:
        status = ""
    context = {
        "endpoint": endpoint,
        "deliveries": webhook_delivery_log(endpoint=endpoint, status=status),
        "status": status,
        "statuses": WebhookDelivery.Status.choices,
    }
    template = "moderation/integrations/endpoint.html"
    return render(request, f"{template}#log" if request.htmx else template, context)  # type: ignore[attr-defined]


@require_POST
@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if endpoint.is_active:
        webhook_endpoint_disable(endpoint=endpoint, reason=f"Disabled by {request.user}.")
        messages.success(request, "Endpoint disabled: new events are not sent to it.")
    else:
        webhook_endpoint_enable(endpoint=endpoint)
        messages.success(request, "Endpoint enabled: waiting deliveries go out now.")
    return redirect("moderation:webhook_endpoint", pk=pk)


@require_POST
@permission_required(Perm.MANAGE_INTEGRATIONS)
def delivery_redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery.objects.select_related("event", "endpoint"), pk=pk)
    error = ""
    try:
        delivery = webhook_redeliver(delivery=delivery)
    except ModerationError as exc:
        error = str(exc)
    if request.htmx:  # type: ignore[attr-defined]
        return render(
            request,
            "moderation/integrations/endpoint.html#row",
            {"d": delivery, "row_error": error, "queued": not error},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Queued for redelivery.")
    return redirect("moderation:webhook_endpoint", pk=delivery.endpoint_id)
