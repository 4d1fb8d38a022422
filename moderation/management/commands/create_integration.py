from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.errors import ModerationError
from moderation.integrations.services import integration_create


class Command(BaseCommand):
    help = (
        "Create a platform integration that may push user-feedback events to /api/feedback/events/, "
        "and print its token once (only a hash is stored; it expires after INTEGRATION_TOKEN_LIFETIME_DAYS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            integration, token = integration_create(name=opts["name"])
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Integration “{integration.name}” created. Its token is shown only now; store it safely.")
        self.stdout.write(token)
