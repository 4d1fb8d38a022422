from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.integrations.models import Integration
from moderation.integrations.services import integration_token_rotate


class Command(BaseCommand):
    help = (
        "Give a platform integration a new token (its old one is refused from now on), valid for "
        "INTEGRATION_TOKEN_LIFETIME_DAYS, and print it once (only a hash is stored)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **opts: Any) -> None:
        # A NUL can be in no name (PostgreSQL text holds none): asking for it was a DataError traceback.
        integration = None if "\x00" in opts["name"] else Integration.objects.filter(name=opts["name"]).first()
        if integration is None:
            raise CommandError(f"No integration is named “{opts['name']}”.")
        integration, token = integration_token_rotate(integration=integration, by=None)
        self.stderr.write(
            f"Integration “{integration.name}” has a new token, valid until "
            f"{integration.token_expires_at:%Y-%m-%d %H:%M %Z}; the old one is refused from now on. "
            "It is shown only now; store it safely."
        )
        self.stdout.write(token)
