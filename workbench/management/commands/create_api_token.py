"""``manage.py create_api_token --user NAME --label TEXT [--expires-days N] [--scope read|write] [--rotate]``: an API
token for a user (a service account's, a script's) from the command line, issued by the service behind the API token
page and ``POST /api/token/`` (``workbench.tokens.api_token_issue``): only its hash stored, its expiry, its scope, the
audit event (``api_token.create`` / ``.rotate``, with the label and ``via`` this command, and no actor).

The key alone is written to stdout (``KEY=$(manage.py create_api_token …)``), once; what it is and until when goes to
stderr. DRF's ``drf_create_token`` is replaced by a refusal pointing here (``drf_create_token.py`` beside this)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workbench.tokens import (
    API_TOKEN_MAX_LIFETIME_DAYS,
    ApiTokenRequestInvalid,
    ApiTokenScopeUnknown,
    api_token_issue,
    api_token_of,
)

VIA = "manage.py create_api_token"


class Command(BaseCommand):
    help = (
        "Issue an API token for a user (the same service as the API token page: stored hashed, expiring, audited). "
        "Prints the key once, alone on stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, metavar="NAME", help="the username the token acts as")
        parser.add_argument(
            "--label",
            required=True,
            metavar="TEXT",
            help="what the token is for (one line, 200 characters at most): kept on the token (the token list shows it) and recorded in the audit log",
        )
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            metavar="N",
            help=f"days the token is accepted (1 to {API_TOKEN_MAX_LIFETIME_DAYS}); default API_TOKEN_LIFETIME_DAYS",
        )
        parser.add_argument(
            "--scope",
            default=None,
            help="read (GET, HEAD, OPTIONS only) or write; default write, or the old token's scope with --rotate",
        )
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="replace the user's valid token (refused from then on); without it a user holding one is refused",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        user_model = get_user_model()
        name = opts["user"]
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: name}).first()
        if user is None:
            raise CommandError(f"No user named {name!r}: create the user first (the admin, or createsuperuser).")
        if not user.is_active:
            raise CommandError(
                f"User {name!r} is inactive: a token of theirs would be refused. Reactivate the user in the admin first."
            )
        if not opts["rotate"]:
            current = api_token_of(user=user)
            if current is not None and not current.expired:
                raise CommandError(
                    f"User {name!r} has a valid API token ({current.prefix}…, scope {current.scope}, until "
                    f"{current.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC); its key is shown only when made. "
                    "Pass --rotate to replace it (the old one is refused from then on)."
                )
        try:
            issued = api_token_issue(
                user=user,
                rotate=opts["rotate"],
                scope=opts["scope"],
                lifetime_days=opts["expires_days"],
                label=opts["label"],
                via=VIA,
            )
        except (ApiTokenScopeUnknown, ApiTokenRequestInvalid) as exc:
            raise CommandError(str(exc)) from exc
        if not issued.key:  # made by someone else between the look above and the issue
            raise CommandError(f"User {name!r} was given a valid API token meanwhile; pass --rotate to replace it.")
        token = issued.token
        self.stderr.write(
            f"API token for {name!r} ({token.prefix}…, scope {token.scope}), valid until "
            f"{token.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC. Send it as 'Authorization: Token <key>'. "
            "The key below is shown this once: only its hash is kept."
        )
        self.stdout.write(issued.key)
