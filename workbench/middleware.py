"""Request checks that apply to every view."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import resolve_url

from workbench.api_errors import fields_too_big_message
from workbench.jsonlog import current_request_id, request_id_from
from workbench.roles import login_next

NUL_MESSAGE = "Text may not contain NUL characters (\\x00); remove them and try again."


def _nul_fields(request: HttpRequest) -> list[str]:
    """The names of the query or form fields whose name or text holds a NUL character."""
    found: list[str] = []
    for params in (request.GET, request.POST):
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                found.append(key.replace("\x00", "\ufffd"))
    return found


def _plain_refusal(request: HttpRequest, text: str, status: int) -> HttpResponse:
    """The sentence alone: as the API's ``{"detail": …}`` JSON for the API (a platform's client parses every
    answer of /api/ as JSON, and a text/plain 400 broke it with a decoding error instead of the reason), as
    plain text for htmx and other scripts."""
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": text}, status=status)
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _wants_page(request: HttpRequest) -> bool:
    """A browser's request for a whole page (not htmx, not a script)."""
    return not request.headers.get("HX-Request") and "text/html" in request.headers.get("Accept", "")


class ProbeAnyHostMiddleware:
    """``/healthz`` and ``/readyz`` answer a probe whatever ``Host`` it sends.

    Probes ask by address (Docker's healthcheck ``127.0.0.1:8000``, a kubelet the pod's IP, a load balancer its
    target's), which production's ALLOWED_HOSTS does not name: Django answered them 400 (DisallowedHost), so the
    web container was unhealthy as soon as ALLOWED_HOSTS named the real host only. These two answers build no
    URL from the host, so nothing a forged Host could poison. A request whose host is allowed goes the usual way
    (an admin's session sees /readyz's detail); one that is not is answered here as an anonymous caller (the
    metrics token still shows the detail). First in MIDDLEWARE: before anything that validates the host."""

    PROBES = ("/healthz", "/readyz")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # An unusual method goes on to UnusualMethodMiddleware's 405 (answered here, TRACE got the probe's answer).
        if request.path_info in self.PROBES and request.method in ANSWERED_METHODS:
            try:
                request.get_host()
            except DisallowedHost:
                from workbench import views

                request.user = AnonymousUser()
                return views.healthz(request) if request.path_info == "/healthz" else views.readyz(request)
        return self.get_response(request)


class RequestIdMiddleware:
    """Every log line written while serving a request carries its id (``workbench.jsonlog``), and the response
    says it (``X-Request-ID``: gunicorn's access log prints it, a user can quote it). The proxy's id is kept
    when it sent a plain one, so its log and ours join on it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


# Multipart overhead (boundaries, part headers) allowed on top of the form limit on a route that takes no file.
FORM_BODY_SLACK = 64 * 1024
UPLOAD_SIGNED_OUT_MESSAGE = (
    "Sign in, or send your API token (Authorization: Token …) or integration token (Authorization: Integration …), "
    "before sending a file: nothing of it was read."
)


UPLOAD_CREDENTIAL_REFUSED_MESSAGE = (
    "Your Authorization header's token is not accepted (unknown, expired, or its integration switched off): nothing "
    "of the file was read. Send a valid API token (Authorization: Token …) or integration token "
    "(Authorization: Integration …)."
)


class RequestSizeMiddleware:
    """Answer 413 to a request whose declared body is larger than its route takes, before any of it is read: the
    biggest upload plus the form fields (WORKBENCH_UPLOAD_MAX_BYTES + DATA_UPLOAD_MAX_MEMORY_SIZE) on the routes that
    take a file (``WORKBENCH_UPLOAD_ROUTES``), the form limit (DATA_UPLOAD_MAX_MEMORY_SIZE) on every other one.

    Django streams an upload to a temporary file before a view can look at its size (reading the form, even to
    check it for NUL, does it): a 50 GB upload filled the server's disk before being refused. And every route took
    the upload limit, before any sign-in check: anyone, signed in or not, could make any address (``/review/claim/``)
    write 510 MB to the server's disk per request, which a route without a file field only threw away. The upload
    limit is checked first of all; the route's, once its view is known (``process_view``, first of the middleware's:
    nothing has read the body yet). A browser's page past the form limit gets the 400 page that says so (as when
    Django refuses the form itself); scripts and the API the sentence, 413."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = _declared_length(request)
        limit = int(settings.WORKBENCH_UPLOAD_MAX_BYTES) + int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)
        if declared > limit:
            message = (
                f"This request is {declared:,} bytes; the server takes at most {limit:,} "
                f"(a video of up to {int(settings.WORKBENCH_UPLOAD_MAX_BYTES) // (1024 * 1024)} MB and its form)."
            )
            return _plain_refusal(request, message, 413)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        small = getattr(view_func, "body_max_bytes", None)  # a route that takes only a small body (CSP reports)
        if small is not None and _declared_length(request) > small:
            return _plain_refusal(request, f"This address takes a body of at most {small:,} bytes.", 413)
        form_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if form_limit is None or _declared_length(request) <= int(form_limit) + FORM_BODY_SLACK:
            return None
        match = request.resolver_match
        if match is not None and match.view_name in settings.WORKBENCH_UPLOAD_ROUTES:
            if request.user.is_authenticated:
                return _over_upload_rate(request, request.user)  # else None: the view checks the role
            authorization = request.headers.get("Authorization")
            if authorization:
                from workbench.tokens import api_token_scope_refusal_for, api_token_user_for, upload_credential_valid

                # The credential itself, not just a header's presence: a made-up ``Authorization`` took the file
                # too (the API checks the token only once the NUL check has read, spooled, the body). One indexed
                # lookup of the token's hash; the view still checks the role. A read-only API token may send no
                # file at all: refused here too, with the API's own words.
                if upload_credential_valid(authorization):
                    scope_refused = api_token_scope_refusal_for(authorization, method=request.method or "POST")
                    if scope_refused:
                        return _plain_refusal(request, scope_refused, 403)
                    return _over_credential_rate(request, authorization) or _over_upload_rate(
                        request, api_token_user_for(authorization)
                    )
                refused = _plain_refusal(request, UPLOAD_CREDENTIAL_REFUSED_MESSAGE, 401)
                scheme = authorization.split(maxsplit=1)[0].lower()
                refused["WWW-Authenticate"] = "Integration" if scheme == "integration" else "Token"
                return refused
            # Signed out with no token: refused before the NUL check reads (spools) the file.
            if _wants_page(request) and not request.path.startswith("/api/"):
                return redirect_to_login(login_next(request))
            refused = _plain_refusal(request, UPLOAD_SIGNED_OUT_MESSAGE, 401)
            refused["WWW-Authenticate"] = "Token"  # as the API's own 401 (its first authentication class)
            return refused
        if not request.path.startswith("/api/") and _wants_page(request):
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        return _plain_refusal(request, fields_too_big_message(), 413)


def _over_credential_rate(request: HttpRequest, authorization: str) -> HttpResponse | None:
    """A large video upload sent with a credential that has a rate of its own (an integration's token: its request
    rate, ``workbench.tokens.upload_rate_peeks``) spent: refused before its body is read, 429 with ``Retry-After``.
    Only the user's rate was looked at first: a platform past its rate (or whoever held its leaked token) still made
    the server read and spool each 500 MB upload to disk, answered 429 only then, with no bound on how many. None
    when it may go on (the API's throttle counts it) or the scheme has no such rate."""
    from workbench.tokens import upload_rate_peeks

    parts = authorization.split()
    peek = upload_rate_peeks.get(parts[0].lower()) if len(parts) == 2 else None
    if peek is None or not _rate_counted_route(request):
        return None
    refused = peek(parts[1])
    if refused is None:
        return None
    wait, text = refused
    response = _plain_refusal(request, text, 429)
    response["Retry-After"] = str(wait)
    return response


def _rate_counted_route(request: HttpRequest) -> bool:
    """A POST to a route that takes a video (``UPLOAD_RATE_ROUTES``): what the early rate refusals look at."""
    match = request.resolver_match
    return request.method == "POST" and match is not None and match.view_name in settings.UPLOAD_RATE_ROUTES


def _over_upload_rate(request: HttpRequest, user: Any) -> HttpResponse | None:
    """A large video upload from ``user`` over their upload rate (UPLOAD_RATE_LIMIT): refused before its body is
    read. The rate was checked only by the view and the API's throttle, after the CSRF or NUL check had read, spooled
    to disk, the whole file: a user past their rate could still make the server write 500 MB per request, each then
    answered 429. A page's form comes back with the reason (a redirect to it with the message); scripts and the API
    get the sentence, 429 with ``Retry-After``. None when the upload may go on (the view or the API counts it)."""
    if user is None or not _rate_counted_route(request):
        return None
    from workbench.throttles import upload_rate_refusal_text, upload_rate_wait_peek

    wait = upload_rate_wait_peek(user)
    if wait is None:
        return None
    text = upload_rate_refusal_text(wait)
    if _wants_page(request) and not request.path.startswith("/api/"):
        from django.contrib import messages
        from django.http import HttpResponseRedirect

        messages.error(request, text)
        refused: HttpResponse = HttpResponseRedirect(request.get_full_path(), status=303)
    else:
        refused = _plain_refusal(request, text, 429)
    refused["Retry-After"] = str(wait)
    return refused


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django reads no body then


class RejectNulMiddleware:
    """Refuse, with a clear message, a URL path, form or query string carrying a NUL character, unless the view
    validates its input with the workbench's forms (``workbench.forms.nul_checked_by_form``), which say it
    on the field and give the page back as typed.

    PostgreSQL's text type cannot hold NUL, so such input would otherwise fail deep inside a save
    as a database error, or as a ValueError where a path is opened (a 500). Browsers never send it: the page
    script (workbench.js) says it on the field before a form is sent. Anything else is answered 400: a page
    naming the fields (the browser's Back keeps what was typed), or the sentence alone for htmx and scripts.
    Uploaded files are not text and are left alone; JSON bodies go through the API's parser
    (workbench/parsers.py), which stores NUL as U+FFFD like every importer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return _plain_refusal(request, NUL_MESSAGE, 400)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        if getattr(view_func, "nul_checked_by_form", False):
            return None
        try:
            fields = _nul_fields(request)
        except (RequestDataTooBig, MultiPartParserError, TooManyFieldsSent, TooManyFilesSent) as exc:
            # A form that cannot be read was Django's bare "Bad Request (400)" HTML page, on the API too, where
            # every refusal is JSON with the reason (and the schema says so). A page's form keeps Django's page.
            if not request.path.startswith("/api/") and _wants_page(request):
                raise
            if isinstance(exc, RequestDataTooBig):
                return _plain_refusal(request, fields_too_big_message(), 413)
            return _plain_refusal(request, f"The form could not be read: {exc}", 400)
        if not fields:
            return None
        named = ", ".join(f"“{name[:40]}”" for name in fields[:5])
        if not _wants_page(request):
            return _plain_refusal(request, f"{NUL_MESSAGE} (in {named})", 400)
        from django.template.loader import render_to_string

        html = render_to_string("400_nul.html", {"fields": named, "message": NUL_MESSAGE}, request=request)
        return HttpResponse(html, status=400)


class MethodNotAllowedPageMiddleware:
    """Give the browser a page, not an empty 405, when a form's address is opened directly.

    ``require_POST`` answers an empty ``HttpResponseNotAllowed``, which Chromium shows as its own
    "This page isn't working · HTTP ERROR 405". A user gets there by pressing Enter in the address bar
    after a refused form was shown at its POST address, by a bookmark, or by going back after the
    session ended. The status stays 405 (and ``Allow`` stays); the API's own 405 answers (JSON) and
    htmx requests are left as they are.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 405
            and request.method in ("GET", "HEAD")
            and not response.content
            and not request.headers.get("HX-Request")
        ):
            from django.template.loader import render_to_string

            html = render_to_string("405.html", {"allowed": response.get("Allow", "")}, request=request)
            page = HttpResponse(html, status=405)
            if response.has_header("Allow"):
                page["Allow"] = response["Allow"]
            return page
        return response


# The methods a route of ours may answer: a view decides which of them it takes (and answers 405 itself to others).
ANSWERED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_FUNCTION_VIEW_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
_METHOD_TOKEN = re.compile(r"[A-Z0-9!#$%&'*+.^_`|~-]{1,20}")


def _allowed_methods(request: HttpRequest) -> list[str]:
    """The ``Allow`` of a 405 for an unusual method at ``request``'s address: a class-based or API view's own
    methods, read off the view; a function view decides inside itself, so the methods such views answer."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return list(_FUNCTION_VIEW_METHODS)
    func = match.func
    actions = getattr(func, "actions", None)  # a DRF viewset's route: its method → action map
    view_class = getattr(func, "view_class", None) or getattr(func, "cls", None)
    if isinstance(actions, dict):
        named = {m.upper() for m in actions}
    elif view_class is not None:
        named = {m.upper() for m in getattr(view_class, "http_method_names", ()) if hasattr(view_class, m)}
    else:
        return list(_FUNCTION_VIEW_METHODS)
    if "GET" in named:
        named.add("HEAD")
    named.add("OPTIONS")
    return [m for m in ANSWERED_METHODS if m in named]


class UnusualMethodMiddleware:
    """Answer 405 (with ``Allow``) to any method but :data:`ANSWERED_METHODS`: TRACE, CONNECT, WebDAV's or a
    made-up one. A function view tells GET from POST by ``request.method == "POST"``, so TRACE rendered the page
    as a GET would (and CSRF lets TRACE through as a safe method); a made-up method ran such a view too. One rule
    here for every route, pages and API alike, before any view, session or database is touched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        method = request.method or ""
        if method in ANSWERED_METHODS:
            return self.get_response(request)
        shown = method if _METHOD_TOKEN.fullmatch(method) else "This method"
        allowed = _allowed_methods(request)
        response = _plain_refusal(
            request, f"{shown} is not answered here; this address takes {', '.join(allowed)}.", status=405
        )
        response["Allow"] = ", ".join(allowed)
        return response


SIGNED_OUT_MESSAGE = (
    "You are signed out (your session ended). Sign in again in a new tab: this page picks up again "
    "and keeps what you typed here."
)


class HtmxSignedOutMiddleware:
    """Answer an htmx request from a signed-out user with 401 and a sentence, not the sign-in redirect.

    htmx follows the redirect and swaps the whole sign-in page (its header and focused username box)
    into the panel it was refreshing: a queue list's 15-second poll turned its table into a second
    page, under a header still naming the user. A 401 is not swapped; workbench.js shows the sentence
    above the page, and the page's own content (choices, typed text) stays until the user signs in.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 302 and request.headers.get("HX-Request") == "true":
            login = resolve_url(settings.LOGIN_URL)
            if response.get("Location", "").split("?", 1)[0] == login:
                return HttpResponse(SIGNED_OUT_MESSAGE, status=401, content_type="text/plain; charset=utf-8")
        return response


# The backend a session signed in before ``workbench.backends.RoleBackend`` was named in the settings holds.
_FORMER_BACKEND = "django.contrib.auth.backends.ModelBackend"


class FormerBackendSessionMiddleware:
    """Keep a session signed in under Django's ``ModelBackend`` (the default before the settings named
    ``RoleBackend``) signed in: Django takes a session whose backend the settings no longer list as signed out, so
    deploying the new backend would have sent every reviewer back to the sign-in page, mid-queue. Such a session is
    moved to the backend the settings name first (the same users, the same permissions), once; a session without a
    cookie is not even looked at."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.contrib.auth import BACKEND_SESSION_KEY

        backends = settings.AUTHENTICATION_BACKENDS
        if (
            settings.SESSION_COOKIE_NAME in request.COOKIES
            and _FORMER_BACKEND not in backends
            and request.session.get(BACKEND_SESSION_KEY) == _FORMER_BACKEND
        ):
            request.session[BACKEND_SESSION_KEY] = backends[0]
        return self.get_response(request)
