from __future__ import annotations

import hmac
import re
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import (
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    HttpResponseServerError,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import Resolver404
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workbench.csp_reports import (
    CSP_REPORT_MAX_BYTES,
    CspReportRefused,
    csp_report_rate_wait,
    csp_reports_from,
    csp_violations_record,
)
from workbench.form_routes import post_only
from workbench.home import home_panels_for
from workbench.models import ApiToken
from workbench.roles import Perm, login_required
from workbench.show_once import ShowOnceLost, show_once_hold, show_once_take
from workbench.storage import content_type_of, is_object_storage, playback_url
from workbench.throttles import api_token_issue_refusal_text, api_token_issue_wait
from workbench.tokens import (
    ApiTokenScopeUnknown,
    api_token_issue,
    api_token_of,
    api_token_revoke,
    api_token_scope_checked,
)

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@require_http_methods(["GET", "HEAD"])
def favicon(request: HttpRequest) -> HttpResponseBase:
    """Browsers ask for /favicon.ico where a page names no icon (the admin's, a JSON or media URL opened in a
    tab): the static icon's current URL (hashed in production), a temporary redirect so a new hash is followed."""
    return redirect(static("favicon.ico"))


@csrf_exempt  # a browser's report carries no CSRF token, and no credentials it could be made to spend
@post_only
def csp_report(request: HttpRequest) -> HttpResponse:
    """The Content-Security-Policy's report collector (``workbench.csp_reports``): open to anyone, small, rate-limited
    per client; 204 once kept, else a short reason (400, 413, 429), never a 500."""
    wait = csp_report_rate_wait(request)
    if wait is not None:
        refused = HttpResponse(
            f"Too many reports from this address; try again in {wait} s.", status=429, content_type=_PLAIN
        )
        refused["Retry-After"] = str(wait)
        return refused
    try:
        reports = csp_reports_from(request)
    except CspReportRefused as exc:
        return HttpResponse(str(exc), status=exc.status, content_type=_PLAIN)
    csp_violations_record(reports=reports)
    return HttpResponse(status=204)


# Refused from the declared length before any middleware reads the body (``RequestSizeMiddleware.process_view``).
csp_report.body_max_bytes = CSP_REPORT_MAX_BYTES  # type: ignore[attr-defined]


_PLAIN = "text/plain; charset=utf-8"


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers (no dependency is checked, so a database outage restarts nothing)."""
    return JsonResponse({"status": "ok"})


def _operator(request: HttpRequest) -> bool:
    """``Authorization: Bearer <METRICS_TOKEN>`` or a signed-in admin: who may read the deployment's inside."""
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    by_token = bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    return by_token or request.user.has_perm(Perm.MANAGE_INTEGRATIONS)


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database, broker, and workers seen recently; 503 with the failing checks otherwise.

    Anyone (an orchestrator's probe) gets the status and which checks pass; the detail (an error's text with
    the database's host and user, workers' host names, queues) only an operator (``_operator``)."""
    from workbench.health import readiness

    ready, checks = readiness()
    if not _operator(request):
        checks = {name: {"ok": check["ok"]} for name, check in checks.items()}
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; ``Authorization: Bearer <METRICS_TOKEN>`` or a signed-in admin."""
    from workbench.metrics import metrics_text

    if not _operator(request):
        if request.user.is_authenticated:
            return HttpResponse("Your role may not read the metrics.\n", status=403, content_type="text/plain")
        response = HttpResponse(
            "Metrics need Authorization: Bearer <METRICS_TOKEN> or an admin session.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_text()
    return HttpResponse(body, content_type=content_type)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """What each role works on first: the panels its permissions allow (``workbench.home``)."""
    return render(request, "home.html", {"panels": home_panels_for(user=cast(User, request.user))})


KEY_KEPT_SENTENCE = (
    "You have an API token ({prefix}…, scope {scope}), valid until {expires:%Y-%m-%d %H:%M} UTC. Its key is shown only once, when it "
    'is made, and is not stored: send {{"rotate": true}} for a new one (the current one is refused from then on; '
    'add "scope" to change its scope), or use the API token page (/account/api-token/).'
)


_SCOPE_TEXT = (
    "`read`: GET, HEAD and OPTIONS only (any other method is refused 403, naming the scope); `write`: everything "
    "your role may do."
)


@extend_schema(
    request=inline_serializer(
        name="ApiTokenRequest",
        fields={
            "rotate": serializers.BooleanField(required=False),
            "scope": serializers.ChoiceField(
                choices=ApiToken.Scope.choices,
                required=False,
                help_text=f"The new token's scope. {_SCOPE_TEXT} Left out: `write` for a first token, the old "
                "token's scope for a rotation.",
            ),
        },
    ),
    responses={
        200: inline_serializer(
            name="ApiToken",
            fields={
                "token": serializers.CharField(),
                "expires_at": serializers.DateTimeField(),
                "scope": serializers.ChoiceField(choices=ApiToken.Scope.choices, help_text=_SCOPE_TEXT),
            },
        ),
        400: OpenApiResponse(description="`scope` is neither `read` nor `write`."),
        409: OpenApiResponse(
            description="You have a valid token already and did not ask to rotate it: its key is not stored, so it "
            "cannot be given again (the detail names its first characters, its scope and its expiry)."
        ),
    },
    description="A new API token for the signed-in user, its scope and when it expires (API_TOKEN_LIFETIME_DAYS); "
    "send it as `Authorization: Token <key>`. The key is in this answer only: the server keeps its hash. Made when "
    "there was none, it expired, or `rotate` is true (the old one is refused from then on); otherwise 409. Only with "
    f"the signed-in session: a call with a token is refused (403), so a token never renews itself. New tokens (a "
    "first one, a rotation) are limited per user (API_TOKEN_ISSUE_RATE_LIMIT, with the API token page): over it, 429 "
    f"and `Retry-After`. {_SCOPE_TEXT}",
)
@api_view(["POST"])
def obtain_token(request: Request) -> Response:
    """A new API token for the signed-in user (when they had none, it expired, or ``rotate``), of the ``scope``
    asked for."""
    # IsAuthenticated (the default permission class) has already refused anonymous users.
    if isinstance(request.auth, ApiToken):
        # A token that renews itself never expires: whoever holds a leaked one pushed its expiry back 90 days at a
        # time (``rotate``), without the password, and locked the owner's own key out.
        raise exceptions.PermissionDenied(
            "An API token cannot renew or replace itself: sign in and use POST /api/token/ with that session, "
            "or the API token page (/account/api-token/)."
        )
    data = request.data if isinstance(request.data, dict) else {}
    rotate = str(data.get("rotate", "")).lower() in ("true", "1", "on")
    try:
        scope = api_token_scope_checked(data.get("scope"))
    except ApiTokenScopeUnknown as exc:
        raise exceptions.ValidationError({"scope": [str(exc)]}) from exc
    current = api_token_of(user=cast(User, request.user))
    if rotate or current is None or current.expired:
        wait = api_token_issue_wait(request)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail=api_token_issue_refusal_text(wait))
    issued = api_token_issue(user=cast(User, request.user), rotate=rotate, scope=scope)
    if not issued.key:
        token = issued.token
        detail = KEY_KEPT_SENTENCE.format(
            prefix=token.prefix, scope=token.scope, expires=issued.expires_at.astimezone(UTC)
        )
        return Response({"detail": detail}, status=409)
    return Response({"token": issued.key, "expires_at": issued.expires_at, "scope": issued.token.scope})


_API_TOKEN_ONCE_KEY = "api_token_once"  # noqa: S105 (a session key's name, not a secret)


@require_http_methods(["GET", "POST"])
@login_required
def api_token_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's API token: whether they have one and when it expires; POST ``action`` create, rotate
    or revoke (the same service as ``POST /api/token/``). A new key is shown once, on the page after the redirect
    (held until then sealed, never in the session: ``workbench.show_once``), so reloading it, another tab or going
    back neither posts again nor shows the key again."""
    user = cast(User, request.user)
    if request.method == "POST":
        action = request.POST.get("action", "")
        current = api_token_of(user=user)
        if action == "revoke":
            if api_token_revoke(user=user):
                messages.success(request, "Your API token is revoked: it is refused from now on.")
            else:
                messages.info(request, "You have no API token: nothing to revoke.")
        elif action == "create" and current is not None and not current.expired:
            # A second post of the form (or another tab): the token made then stays, and is not shown again.
            messages.info(request, f"You have a token already ({current.prefix}…); rotate it for a new one.")
        elif action in ("create", "rotate"):
            try:
                scope = api_token_scope_checked(request.POST.get("scope"))
            except ApiTokenScopeUnknown as exc:
                context = {**_api_token_context(request), "error": str(exc)}
                return render(request, "workbench/api_token.html", context, status=400)
            wait = api_token_issue_wait(request)
            if wait is not None:
                context = {**_api_token_context(request), "error": api_token_issue_refusal_text(wait)}
                response = render(request, "workbench/api_token.html", context, status=429)
                response["Retry-After"] = str(wait)
                return response
            issued = api_token_issue(user=user, rotate=action == "rotate", scope=scope)
            once = {"key": issued.key, "replaced": current is not None, "scope": issued.token.scope}
            if not show_once_hold(request, name=_API_TOKEN_ONCE_KEY, value=once):
                return _api_token_shown(request, once)  # Redis down: shown now rather than lost
        else:
            return render(request, "workbench/api_token.html", _api_token_context(request), status=400)
        return redirect("api-token-page")
    try:
        once = show_once_take(request, name=_API_TOKEN_ONCE_KEY) or {}
    except ShowOnceLost as exc:
        return _api_token_shown(request, {}, lost=str(exc))
    return _api_token_shown(request, once)


def _api_token_shown(request: HttpRequest, once: dict[str, Any], *, lost: str = "") -> HttpResponse:
    context = {
        **_api_token_context(request),
        "error": "",
        "lost": lost,
        "new_key": once.get("key", ""),
        "replaced": once.get("replaced"),
        "new_scope": once.get("scope", ""),
    }
    response = render(request, "workbench/api_token.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _api_token_context(request: HttpRequest) -> dict[str, object]:
    return {
        "token": api_token_of(user=cast(User, request.user)),
        "lifetime_days": settings.API_TOKEN_LIFETIME_DAYS,
        "scopes": ApiToken.Scope.choices,
        "error": "" if request.method == "GET" else "Choose create, rotate or revoke.",
    }


# A byte position past any file: a Range number longer than this many digits is read as it (Python refuses to read
# an integer of more than 4,300 digits: a ValueError, so a 500, for a header of 5,000 nines).
_POSITION_DIGITS = 18


def _byte_position(digits: str) -> int | None:
    """A Range header's byte position (``None`` when left out); one longer than any file is read as 10**18."""
    if not digits:
        return None
    return int(digits) if len(digits) <= _POSITION_DIGITS else 10**_POSITION_DIGITS


def _iter_file(path: Path, start: int, length: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            data = fh.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


# Roles whose screens show videos and keyframes (uploaders, moderators, labelers, training admins).
MEDIA_PERMS = (Perm.UPLOAD_VIDEO, Perm.REVIEW_VIDEO, Perm.CORRECT_COT, Perm.MANAGE_TRAINING)
# The folders of media storage this view serves: videos' files, covers and keyframes (the ``upload_to`` of the
# models' file fields; a test checks each is here). The rest of the store is not for these roles: training
# snapshots, checkpoints and adapters (``training/``, read through the training screens' own role check), a
# node's cache and scratch, half-written uploads (``tmp/``).
SERVED_MEDIA_FOLDERS = ("videos", "covers", "keyframes")


def _served_media(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return len(parts) > 1 and parts[0] in SERVED_MEDIA_FOLDERS and ".." not in parts


@login_required
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Serve media to signed-in users whose role shows media, with HTTP Range support so the player seeks.

    Moderation media is never public. With object storage the answer is a redirect to a presigned URL
    valid for MEDIA_URL_EXPIRE_SECONDS: the store serves the bytes (and Range requests) itself, Django
    streams nothing. With local storage the file is served from MEDIA_ROOT (in production a reverse
    proxy can take over with X-Accel-Redirect, the permission check staying here).
    """
    if not any(request.user.has_perm(p) for p in MEDIA_PERMS):
        raise PermissionDenied("Your role may not view media.")
    if not _served_media(path):
        raise Http404("No such media file.")
    if not import_string(settings.MEDIA_PATH_OPEN_TO)(user=request.user, path=path):
        raise Http404("No such media file.")  # a restricted queue's video: not revealed
    if is_object_storage():
        redirect = HttpResponseRedirect(playback_url(path))
        # The browser may reuse the redirect for the player's Range requests while the URL is valid.
        redirect["Cache-Control"] = f"private, max-age={max(int(settings.MEDIA_URL_EXPIRE_SECONDS) // 2, 0)}"
        return redirect
    root = Path(settings.MEDIA_ROOT).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise Http404("No such media file.")
    size = target.stat().st_size
    content_type = content_type_of(target.name, media=True)
    match = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    if not match:
        response: HttpResponseBase = FileResponse(target.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = (_byte_position(group) for group in match.groups())
    if first is None:
        start = max(size - (last or 0), 0)
        end = size - 1
    else:
        start = first
        end = min(last, size - 1) if last is not None else size - 1
    if start >= size or start > end:
        resp = HttpResponse(status=416)
        resp["Content-Range"] = f"bytes */{size}"
        return resp
    length = end - start + 1
    response = StreamingHttpResponse(_iter_file(target, start, length), status=206, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response


CSRF_FAILURE_MESSAGE = (
    "This page was opened before you last signed in (in this or another tab), or the browser's cookies were "
    "cleared, so the server could not accept what it sent; nothing was saved."
)
SENT_FIELDS_SHOWN = 40


# Field names whose values the CSRF failure page never shows (sign-in, password change, webhook secrets, tokens).
SECRET_FIELD_WORDS = ("password", "secret", "token", "api_key")


# A form whose choices are ids (the tags panel's ticked tags) names them in the request itself, so the page a refused
# form lands on can say what was chosen in words: "_field_name" ("<field>:<what it holds>") and one "_choice_name"
# ("<field>:<value>:<name>") per choice it can send. Read from what this request sent, never from the database: the
# page only gives its sender back their own words (it is shown signed out too), whatever the layers above hold.
CHOICE_NAMING_FIELDS = ("_field_name", "_choice_name")


def _choices_named(post: QueryDict) -> list[dict[str, object]]:
    """The named fields of a refused form: each field's description and the names of the values it sent (those the
    form named; an unnamed value is shown as sent), in the order sent."""
    fields = {
        field: label
        for field, label in (str(v).split(":", 1) for v in post.getlist("_field_name") if ":" in str(v))
        # As for the fields echoed one by one: a password, key or the CSRF token is never named back, whatever a
        # "_field_name" asks for.
        if field != "csrfmiddlewaretoken" and not any(word in field.lower() for word in SECRET_FIELD_WORDS)
    }
    names: dict[tuple[str, str], str] = {}
    for raw in post.getlist("_choice_name"):
        parts = str(raw).split(":", 2)
        if len(parts) == 3:
            names.setdefault((parts[0], parts[1]), parts[2])
    return [
        {"field": field, "label": label, "names": [names.get((field, str(v)), str(v)) for v in post.getlist(field)]}
        for field, label in fields.items()
    ]


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused by the CSRF check (``CSRF_FAILURE_VIEW``): say why in words, and, for a form sent from
    the workbench's own pages, show what it held so typed text (a CoT correction, a taxonomy) can be copied
    instead of lost. The review screen's background submit gets JSON and htmx plain text, as their scripts
    expect. Nothing is resent from here."""
    if request.headers.get("X-Review-Background") == "1":
        error = f"{CSRF_FAILURE_MESSAGE} Reload the page and decide again."
        return JsonResponse({"ok": False, "error": error, "still_yours": True}, status=403)
    if request.headers.get("HX-Request") == "true":
        return HttpResponse(f"{CSRF_FAILURE_MESSAGE} Reload the page.\n", status=403, content_type="text/plain")
    # A request another site made (refused on its Origin or Referer) is not echoed back.
    from_elsewhere = reason.startswith(("Origin checking failed", "Referer checking failed"))
    sent = []
    chosen = [] if from_elsewhere else _choices_named(request.POST)
    for name in [] if from_elsewhere else request.POST:
        if name in CHOICE_NAMING_FIELDS:
            continue
        value = str(request.POST.get(name, ""))
        secret = any(word in name.lower() for word in SECRET_FIELD_WORDS)  # a password or key is never echoed
        if name != "csrfmiddlewaretoken" and not secret and value.strip() and not value.strip().isdigit():
            rows = min(max(value.count("\n") + 1, 2), 12)
            # A choice (a label, a button's value) is one line; typed text gets a box to copy from.
            sent.append({"name": name, "value": value, "rows": rows, "short": len(value) <= 40 and " " not in value})
    referer = request.headers.get("Referer", "")
    same_site = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    back = (urlsplit(referer).path if referer and same_site else "") or "/"
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = "/"  # a path such as "//elsewhere.example/x" is another site's address in a link
    context = {
        "message": CSRF_FAILURE_MESSAGE,
        "sent": sent[:SENT_FIELDS_SHOWN],
        "more": max(len(sent) - SENT_FIELDS_SHOWN, 0),
        "chosen": chosen,
        "back": back,
    }
    return render(request, "csrf_failure.html", context, status=403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 400 page in the site's layout. A form too large for the server to read (more fields than
    DATA_UPLOAD_MAX_NUMBER_FIELDS, a body over DATA_UPLOAD_MAX_MEMORY_SIZE) was Django's bare "Bad Request (400)",
    which said neither what was too large nor that nothing was saved. Nothing of the request was read, so nothing
    was saved; the page says what to send less of and leads back to the form's page (the sender's own address:
    the Referer when it is this site's, with its query, so the policy editor opens on the version the edit started
    from, where the edit kept in the browser is put back)."""
    if isinstance(exception, DisallowedHost):
        # A host this site does not answer to: nothing of the site's (its layout, links built from the host) is
        # drawn for it; the plain answer Django gives.
        return HttpResponseBadRequest("<h1>Bad Request (400)</h1>", content_type="text/html")
    too_big = ""
    if isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        too_big = f"The form sent more than {limit:,} fields, the most the server reads in one request."
    elif isinstance(exception, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        too_big = f"The form sent more than {limit:,} files, the most the server reads in one request."
    elif isinstance(exception, RequestDataTooBig):
        megabytes = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) / (1024 * 1024)
        too_big = f"The form sent more than {megabytes:g} MB of text, the most the server reads in one request."
    referer = request.headers.get("Referer", "")
    back = ""
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(referer)
        back = parts.path + (f"?{parts.query}" if parts.query else "")
    if not back and request.method == "GET":
        back = "/"
    if not back:
        back = request.path  # the form's page is most often its own address
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = "/"  # a path such as "//elsewhere.example/x" is another site's address in a link
    return render(request, "400.html", {"too_big": too_big, "back": back}, status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page (rendered without a request context: nothing that can fail again), with the request's
    Content-Security-Policy nonce for its one inline ``<style>``: without it the page was drawn unstyled."""
    from django.template import loader

    html = loader.get_template("500.html").render({"csp_nonce": getattr(request, "csp_nonce", "")})
    return HttpResponseServerError(html)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 404 page with the reason a view gave ("Pick two evaluations to compare.", "This dataset's export is
    missing."), which the page used to drop for its generic text. Django's own messages ("No Video matches the
    given query.", the URL resolver's) are not written for users and are left out."""
    reason = ""
    args = getattr(exception, "args", ())
    if args and isinstance(args[0], str) and not isinstance(exception, Resolver404):
        reason = "" if args[0].endswith("matches the given query.") else args[0]
    return render(request, "404.html", {"reason": reason}, status=404)
