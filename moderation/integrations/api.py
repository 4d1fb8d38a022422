"""Integration authentication, permissions and rate limits for the DRF APIs.

``Authorization: Integration <token>``. The token is not a user: user-only APIs (session or
``Token`` auth) refuse it, and what it may read is scoped to the videos it submitted.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from moderation.integrations.models import Integration
from moderation.integrations.services import IntegrationRefused, integration_authenticate, integration_valid_for
from workbench.throttles import AtomicRateThrottle, rate_wait_peek, retry_after_text
from workbench.tokens import CredentialExpired, CredentialRefused

logger = logging.getLogger(__name__)

KEYWORD = "Integration"


class IntegrationAuthentication(BaseAuthentication):
    # What it accepts is a platform, not a user (``request.user`` stays anonymous): ``IsAuthenticated`` refuses
    # it, which the OpenAPI schema's 403 rule reads (``workbench.api_schema._admits_every_caller_of``).
    authenticates_a_user = False

    def authenticate(self, request: Request) -> tuple[Any, Integration] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        # Every refusal is a 401 with its code: an unknown token was a 403 on the routes that also take a
        # session (DRF answers 403 behind SessionAuthentication) and a 401 on /api/feedback/events/, so a
        # platform's client could not tell a wrong token from a route it may not use.
        if len(parts) != 2:
            raise CredentialRefused(
                "Invalid Integration header: expected 'Integration <token>'.", scheme=KEYWORD, code="invalid_token"
            )
        try:
            token = parts[1].decode()
        except UnicodeError as exc:
            raise CredentialRefused("Invalid integration token.", scheme=KEYWORD, code="invalid_token") from exc
        try:
            integration = integration_authenticate(token=token)
        except IntegrationRefused as exc:
            if exc.code == "token_expired":
                raise CredentialExpired(str(exc), scheme=KEYWORD) from exc
            raise CredentialRefused(str(exc), scheme=KEYWORD, code=exc.code) from exc
        return AnonymousUser(), integration

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


def request_integration(request: Request) -> Integration | None:
    return request.auth if isinstance(request.auth, Integration) else None


class IsIntegration(BasePermission):
    message = "This endpoint takes an integration token (Authorization: Integration <token>)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request_integration(request) is not None

    def admits_every_caller_of(self, authentication: type) -> bool:
        """Every caller an ``IntegrationAuthentication`` accepts is an integration: behind it alone this
        permission never answers 403 (``workbench.api_schema``)."""
        return issubclass(authentication, IntegrationAuthentication)


class IntegrationOnlyView(APIView):
    """An endpoint only platforms call, with their integration token (``IntegrationAuthentication`` alone). Without
    one, DRF's 401 said "Authentication credentials were not provided." — also to a signed-in user trying it from
    /api/docs/, who had provided their session: the refusal names the credential this endpoint takes."""

    authentication_classes = [IntegrationAuthentication]
    permission_classes = [IsIntegration]

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> NoReturn:
        if request.successful_authenticator is None:
            raise NotAuthenticated(
                f"{IsIntegration.message} A signed-in session or a user's API token is not accepted here; "
                "integrations and their tokens are on the Integrations page (admins)."
            )
        super().permission_denied(request, message=message, code=code)


class IsSignedInOrIntegration(BasePermission):
    """A signed-in user or a platform's integration token: what reads the API's own description (the
    OpenAPI schema and its docs, named in SPECTACULAR_SETTINGS) need, as the API root does."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return IsAuthenticated().has_permission(request, view) or request_integration(request) is not None


class IntegrationRateThrottle(AtomicRateThrottle):
    """Per-integration request rate (``Integration.rate_limit``, else the ``integration`` rate in
    DEFAULT_THROTTLE_RATES); requests that are not an integration's pass. Counted in Redis, so every
    web process shares one count. Over the rate: 429 with ``Retry-After``."""

    scope = "integration"
    # The schema's 429 description of an operation this throttle guards (``workbench.api_schema``).
    describes = "over the integration's request rate (its own rate limit, else INTEGRATION_RATE_LIMIT)"

    def allow_request(self, request: Request, view: Any) -> bool:
        integration = request_integration(request)
        if integration is None:
            return True
        self.rate = integration.rate_limit or self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        integration = request_integration(request)
        return None if integration is None else self.key_of(integration)

    @staticmethod
    def key_of(integration: Integration) -> str:
        # The token hash, not the pk: ids are reused (tests roll back), hashes are not.
        return f"throttle:integration:{integration.token_hash[:24]}"


def integration_rate_wait_peek(token: str) -> tuple[int, str] | None:
    """Whether the integration holding ``token`` has spent its request rate: (seconds to wait, why) or None;
    counts nothing (``workbench.tokens.upload_rate_peeks``: a large upload is refused before its body is read)."""
    integration = integration_valid_for(token=token)
    if integration is None:
        return None
    throttle = IntegrationRateThrottle()
    rate = integration.rate_limit or throttle.get_rate()
    if not rate:
        return None
    wait = rate_wait_peek(throttle, key=IntegrationRateThrottle.key_of(integration), rate=rate)
    if wait is None:
        return None
    text = (
        f"Too many requests: this integration's request rate is {rate}. Try again {retry_after_text(wait)}; this file was "
        "not uploaded (nothing of it was read)."
    )
    return wait, text


class IntegrationAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents ``Authorization: Integration <token>`` in the OpenAPI schema."""

    target_class = "moderation.integrations.api.IntegrationAuthentication"
    name = "integrationToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Integration <token> (manage.py create_integration NAME prints one; it expires after "
            "INTEGRATION_TOKEN_LIFETIME_DAYS: manage.py rotate_integration_token NAME prints a new one)",
        }
