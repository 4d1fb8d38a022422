"""Integration pages (admins): integrations, webhook endpoints, per-endpoint delivery log with redeliver."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from moderation.errors import ModerationError
from moderation.integrations.models import EventType, Integration, WebhookDelivery, WebhookEndpoint
from moderation.integrations.selectors import (
    integration_default_rate,
    integration_rate_shown,
    integrations_overview,
    webhook_delivery_log,
)
from moderation.integrations.services import integration_create
from moderation.integrations.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
    webhook_redeliver,
)
from workbench.roles import Perm, permission_required


def _render_list(request: HttpRequest, *, error: str = "", typed: dict[str, object] | None = None) -> HttpResponse:
    """The integrations page; after a refused form, with the reason beside that form and what was
    typed kept in it (``typed``: ``{"form": "integration" | endpoint pk, ...fields}``), status 400."""
    context = {
        "integrations": integrations_overview(),
        "event_types": EventType.choices,
        "default_rate": integration_default_rate(),
        "default_rate_shown": integration_rate_shown(integration_default_rate()),
        "error": error,
        "typed": typed or {},
    }
    return render(request, "moderation/integrations/list.html", context, status=400 if error else 200)


@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


@require_POST
@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_add(request: HttpRequest) -> HttpResponse:
    name, rate_limit = request.POST.get("name", ""), request.POST.get("rate_limit", "")
    try:
        integration, token = integration_create(name=name, rate_limit=rate_limit)
    except ModerationError as exc:
        return _render_list(
            request, error=str(exc), typed={"form": "integration", "name": name, "rate_limit": rate_limit}
        )
    # Shown once (only its hash is stored): kept in this session until the page after the redirect shows it, so
    # reloading that page cannot post the form again and create a second integration.
    request.session[_SHOW_ONCE_KEY] = {"pk": integration.pk, "token": token}
    return redirect("moderation:integration_token", pk=integration.pk)


_SHOW_ONCE_KEY = "integration_token_once"


@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_token(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    held = request.session.get(_SHOW_ONCE_KEY) or {}
    token = held.get("token", "") if held.get("pk") == integration.pk else ""
    if token:
        del request.session[_SHOW_ONCE_KEY]
    response = render(request, "moderation/integrations/token.html", {"integration": integration, "token": token})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_add(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    url, event_types = request.POST.get("url", ""), request.POST.getlist("event_types")
    only_own_videos = request.POST.get("only_own_videos") == "on"
    try:
        endpoint, _secret = webhook_endpoint_create(
            integration=integration, url=url, event_types=event_types, only_own_videos=only_own_videos
        )
    except ModerationError as exc:
        typed = {"form": integration.pk, "url": url, "event_types": event_types, "only_own_videos": only_own_videos}
        return _render_list(request, error=str(exc), typed=typed)
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
