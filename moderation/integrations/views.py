"""Integration pages (admins): integrations (switch on/off, rotate the token), webhook endpoints, per-endpoint
delivery log with redeliver."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from moderation.errors import ModerationError
from moderation.integrations.models import EventType, Integration, WebhookDelivery, WebhookEndpoint
from moderation.integrations.selectors import (
    DELIVERY_STATUS_FILTER,
    integration_default_rate,
    integration_rate_shown,
    integrations_overview,
    webhook_delivery_log,
    webhook_delivery_state,
    webhook_endpoint_held_count,
    webhook_test_outcome,
)
from moderation.integrations.services import integration_create, integration_switch, integration_token_rotate
from moderation.integrations.signing import HEADER as SIGNATURE_HEADER_NAME
from moderation.integrations.signing import TOLERANCE_SECONDS as SIGNATURE_TOLERANCE_SECONDS
from moderation.integrations.webhooks import (
    WebhookEndpointExists,
    webhook_endpoint_create,
    webhook_endpoint_events_set,
    webhook_endpoint_switch,
    webhook_endpoint_test_send,
    webhook_redeliver,
)
from workbench.form_routes import post_only
from workbench.roles import Perm, permission_required
from workbench.show_once import ShowOnceLost, show_once_hold, show_once_take
from workbench.text import row_id


def _render_list(
    request: HttpRequest,
    *,
    error: str = "",
    typed: dict[str, object] | None = None,
    confirm: tuple[int, str] | None = None,
    existing: WebhookEndpoint | None = None,
) -> HttpResponse:
    """The integrations page; after a refused form, with the reason beside that form and what was
    typed kept in it (``typed``: ``{"form": "integration" | endpoint pk, ...fields}``), status 400."""
    context = {
        "integrations": integrations_overview(),
        "event_types": EventType.choices,
        "default_rate": integration_default_rate(),
        "default_rate_shown": integration_rate_shown(integration_default_rate()),
        "token_lifetime_days": settings.INTEGRATION_TOKEN_LIFETIME_DAYS,
        # Where each platform's path imports are read from, in full: the page said "from integration-1/ in the import
        # folders only" while none was set (the API answers such an import "Server-side import is disabled").
        "import_roots": [str(root).rstrip("/") for root in settings.MEDIA_IMPORT_ROOTS],
        "error": error,
        "typed": typed or {},
        # The endpoint already at the URL an "Add endpoint" was refused for: linked beside the reason.
        "existing": existing,
        # (integration pk, "on" | "off"): that integration's switch asks to confirm (the page without JavaScript)
        "confirm_pk": confirm[0] if confirm else None,
        "confirm_to": confirm[1] if confirm else "",
    }
    return render(request, "moderation/integrations/list.html", context, status=400 if error else 200)


@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


@post_only
@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_add(request: HttpRequest) -> HttpResponse:
    name, rate_limit = request.POST.get("name", ""), request.POST.get("rate_limit", "")
    try:
        integration, token = integration_create(name=name, rate_limit=rate_limit, by=request.user)  # type: ignore[arg-type]
    except ModerationError as exc:
        return _render_list(
            request, error=str(exc), typed={"form": "integration", "name": name, "rate_limit": rate_limit}
        )
    # Shown once (only its hash is stored), on the page after the redirect (held until then sealed, never in the
    # session: ``workbench.show_once``), so reloading that page cannot post the form again and create a second one.
    return _token_shown_next(request, integration, token=token, rotated=False)


_SHOW_ONCE_KEY = "integration_token_once"


@require_http_methods(["GET", "POST"])
@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_switch_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET ``?to=off|on``: the switch asks to confirm, saying what it does (htmx: that integration's switch
    fragment; else the page with it). GET without ``to``: the switch as it is (Cancel). POST ``to``: switch it,
    recorded in the audit log."""
    integration = get_object_or_404(Integration, pk=pk)
    to = request.POST.get("to", "") if request.method == "POST" else request.GET.get("to", "")
    if to not in ("on", "off"):
        to = ""
    if request.method == "POST":
        if not to:
            return HttpResponseBadRequest("Say which way to switch it: to=on or to=off.")
        integration = integration_switch(integration=integration, active=to == "on", by=cast(User, request.user))
        notice = (
            f"“{integration.name}” is switched on: its token is accepted and webhooks are sent again."
            if integration.is_active
            else f"“{integration.name}” is switched off: its token is refused and no webhook is sent."
        )
        if not request.htmx:  # type: ignore[attr-defined]
            messages.success(request, notice)
            return redirect(reverse("moderation:integration_list") + f"#integration-{integration.pk}")
        # The endpoints' notes and held counts change with it: swapped in beside the switch (out of band).
        [integration] = integrations_overview(pk=integration.pk)
        context = {"integration": integration, "notice": notice, "oob": True}
        switch = render_to_string("moderation/integrations/list.html#switch", context, request=request)
        endpoints = render_to_string("moderation/integrations/list.html#endpoints", context, request=request)
        return HttpResponse(switch + endpoints)
    confirming = to if to and (to == "on") != integration.is_active else ""
    if request.htmx:  # type: ignore[attr-defined]
        context = {"integration": integration, "confirm_pk": integration.pk if confirming else None}
        return render(request, "moderation/integrations/list.html#switch", {**context, "confirm_to": confirming})
    if not confirming:
        return redirect(reverse("moderation:integration_list") + f"#integration-{integration.pk}")
    return _render_list(request, confirm=(integration.pk, confirming))


@post_only
@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """A new token for the integration (the old one refused from now on), shown once on the token page."""
    integration = get_object_or_404(Integration, pk=pk)
    integration, token = integration_token_rotate(integration=integration, by=cast(User, request.user))
    return _token_shown_next(request, integration, token=token, rotated=True)


def _token_shown_next(request: HttpRequest, integration: Integration, *, token: str, rotated: bool) -> HttpResponse:
    held = {"pk": integration.pk, "token": token, "rotated": rotated}
    if show_once_hold(request, name=_SHOW_ONCE_KEY, value=held):
        return redirect("moderation:integration_token", pk=integration.pk)
    return _token_page(request, integration, token=token, rotated=rotated)  # Redis down: shown now rather than lost


@permission_required(Perm.MANAGE_INTEGRATIONS)
def integration_token(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    # Taken by any token page: one held for another integration (a redirect not followed) is gone too, not kept.
    try:
        held = show_once_take(request, name=_SHOW_ONCE_KEY) or {}
    except ShowOnceLost:  # the page says a token not shown here is not kept, and to rotate it
        held = {}
    mine = held.get("pk") == integration.pk
    token, rotated = (str(held.get("token", "")), bool(held.get("rotated"))) if mine else ("", False)
    return _token_page(request, integration, token=token, rotated=rotated)


def _token_page(request: HttpRequest, integration: Integration, *, token: str, rotated: bool) -> HttpResponse:
    context = {"integration": integration, "token": token, "rotated": rotated}
    response = render(request, "moderation/integrations/token.html", context)
    response["Cache-Control"] = "no-store"
    return response


@post_only
@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_add(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    url, event_types = request.POST.get("url", ""), request.POST.getlist("event_types")
    only_own_videos = request.POST.get("only_own_videos") == "on"
    try:
        endpoint, _secret = webhook_endpoint_create(
            integration=integration,
            url=url,
            event_types=event_types,
            only_own_videos=only_own_videos,
            by=request.user,  # type: ignore[arg-type]
        )
    except ModerationError as exc:
        typed = {"form": integration.pk, "url": url, "event_types": event_types, "only_own_videos": only_own_videos}
        existing = exc.existing if isinstance(exc, WebhookEndpointExists) else None
        return _render_list(request, error=str(exc), typed=typed, existing=existing)
    messages.success(request, "Endpoint added. Its signing secret is on its page.")
    return redirect("moderation:webhook_endpoint", pk=endpoint.pk)


@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint.objects.select_related("integration"), pk=pk)
    return _render_endpoint(request, endpoint)


def _render_endpoint(
    request: HttpRequest, endpoint: WebhookEndpoint, *, events_error: str = "", typed: dict[str, Any] | None = None
) -> HttpResponse:
    status = DELIVERY_STATUS_FILTER.read(request.GET.get("status"))
    context = {
        "endpoint": endpoint,
        "deliveries": webhook_delivery_log(endpoint=endpoint, status=status.value),
        "status": status.value,
        "status_problem": status.problem,
        "statuses": WebhookDelivery.Status.choices,
        "held": webhook_endpoint_held_count(endpoint=endpoint),
        "event_types": EventType.choices,
        # The verification recipe on the page (it said "verify as in the README", a file a platform may not have).
        "signature_header": SIGNATURE_HEADER_NAME,
        "signature_tolerance": SIGNATURE_TOLERANCE_SECONDS,
        # The events form: the endpoint's own choices, or what was typed when it was refused (with the reason).
        "events_error": events_error,
        "events_chosen": typed["event_types"] if typed else endpoint.event_types,
        "events_own_only": typed["only_own_videos"] if typed else endpoint.only_own_videos,
    }
    template = "moderation/integrations/endpoint.html"
    partial = f"{template}#log" if request.htmx else template  # type: ignore[attr-defined]
    return render(request, partial, context, status=400 if events_error else status.http_status)


@post_only
@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_events(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an endpoint's events: it was fixed at its creation (every box ticked by default), so an endpoint sent
    too much could only be disabled."""
    endpoint = get_object_or_404(WebhookEndpoint.objects.select_related("integration"), pk=pk)
    event_types = request.POST.getlist("event_types")
    only_own_videos = request.POST.get("only_own_videos") == "on"
    try:
        webhook_endpoint_events_set(
            endpoint=endpoint,
            event_types=event_types,
            only_own_videos=only_own_videos,
            by=request.user,  # type: ignore[arg-type]
        )
    except ModerationError as exc:
        typed = {"event_types": event_types, "only_own_videos": only_own_videos}
        return _render_endpoint(request, endpoint, events_error=str(exc), typed=typed)
    messages.success(request, "Events saved: the endpoint is sent these from the next event on.")
    return redirect("moderation:webhook_endpoint", pk=endpoint.pk)


@post_only
@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``to`` (``on`` or ``off``, what the page's button says): enable or disable the endpoint, unless it is so
    already (``webhook_endpoint_switch``: a stale page or a second click no longer flips it back)."""
    endpoint = get_object_or_404(WebhookEndpoint.objects.select_related("integration"), pk=pk)
    to = request.POST.get("to", "")
    if to not in ("on", "off"):
        messages.error(request, "Say whether to enable or disable the endpoint (to=on or to=off): nothing changed.")
        return redirect("moderation:webhook_endpoint", pk=pk)
    endpoint, changed = webhook_endpoint_switch(endpoint=endpoint, active=to == "on", by=request.user)  # type: ignore[arg-type]
    if not changed:
        state = "enabled" if endpoint.is_active else f"disabled ({endpoint.disabled_reason})"
        messages.info(request, f"The endpoint was {state} already, since this page was drawn: nothing changed.")
    elif not endpoint.is_active:
        messages.success(
            request,
            "Endpoint disabled: its waiting deliveries are held until you enable it again, and events that happen "
            "meanwhile are not sent to it.",
        )
    elif endpoint.integration.is_active:
        messages.success(request, "Endpoint enabled: its held deliveries go out now.")
    else:
        messages.success(
            request,
            f"Endpoint enabled. “{endpoint.integration.name}” is switched off, so its held deliveries go out "
            "when it is switched on.",
        )
    return redirect("moderation:webhook_endpoint", pk=pk)


@post_only
@permission_required(Perm.MANAGE_INTEGRATIONS)
def endpoint_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue one signed ``webhook.test`` delivery to this endpoint. From htmx: the line under the button, which then
    asks for the delivery's outcome (``delivery_test_outcome``) until it is known; without scripts: back to the
    page, whose delivery log shows it."""
    endpoint = get_object_or_404(WebhookEndpoint.objects.select_related("integration"), pk=pk)
    try:
        delivery = webhook_endpoint_test_send(endpoint=endpoint, by=cast(User, request.user))
    except ModerationError as exc:
        if request.htmx:  # type: ignore[attr-defined]
            return _render_test_outcome(request, None, refused=f"No test event sent: {exc}")
        messages.error(request, f"No test event sent: {exc}")
        return redirect("moderation:webhook_endpoint", pk=pk)
    if request.htmx:  # type: ignore[attr-defined]
        return _render_test_outcome(request, _test_delivery(delivery.pk), log_changed=True)
    messages.success(
        request,
        f"Test event queued (type webhook.test, event {delivery.event_id}): its result shows in the delivery log "
        "below; reload the page to see it.",
    )
    return redirect(reverse("moderation:webhook_endpoint", args=[pk]) + f"#delivery-{delivery.pk}")


@require_http_methods(["GET"])
@permission_required(Perm.MANAGE_INTEGRATIONS)
def delivery_test_outcome(request: HttpRequest, pk: int) -> HttpResponse:
    """The line under "Send a test event" for delivery ``pk`` (``?polls=``: how many times it asked already;
    ``?seen=``: the attempts the line showed, so the log below redraws when another was made): queued and sending
    ask again in a second, waiting to retry when the next try is due; delivered or failed (with the HTTP status or
    the error) end it."""
    delivery = _test_delivery(pk)
    # ASCII digits only (``row_id``): "²" passed ``isdigit()`` and 5,000 nines too, then ``int()`` failed, a 500.
    polls, seen = row_id(request.GET.get("polls")), row_id(request.GET.get("seen"))
    return _render_test_outcome(
        request, delivery, polls=min(polls or 0, 10_000), log_changed=delivery.attempts != (seen or 0)
    )


def _test_delivery(pk: int) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery.objects.select_related("endpoint__integration", "event"), pk=pk)


def _render_test_outcome(
    request: HttpRequest,
    delivery: WebhookDelivery | None,
    *,
    polls: int = 0,
    refused: str = "",
    log_changed: bool = False,
) -> HttpResponse:
    """The test line; the delivery log below is told to redraw itself (``delivery-log-changed``) when it gains the
    new delivery (``log_changed``) and when the outcome is known (its row shows it too)."""
    outcome = webhook_test_outcome(delivery=delivery, polls=polls) if delivery is not None else None
    context = {"test_delivery": delivery, "outcome": outcome, "refused": refused, "next_poll": polls + 1}
    response = render(request, "moderation/integrations/endpoint.html#test_outcome", context)
    if log_changed or (outcome is not None and outcome.final):
        response["HX-Trigger"] = "delivery-log-changed"
    return response


@post_only
@permission_required(Perm.MANAGE_INTEGRATIONS)
def delivery_redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery.objects.select_related("event", "endpoint__integration"), pk=pk)
    error = ""
    try:
        delivery = webhook_redeliver(delivery=delivery, by=request.user)  # type: ignore[arg-type]
    except ModerationError as exc:
        error = str(exc)
    delivery.state = webhook_delivery_state(delivery=delivery)  # type: ignore[attr-defined]
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
