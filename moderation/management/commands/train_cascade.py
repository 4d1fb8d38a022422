from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.inference.cascade import cascade_train


class Command(BaseCommand):
    help = "Train the cascade's stage-1 classifier on every labelled item in the database and activate it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", default="stage1")
        parser.add_argument("--threshold", type=float, default=None, help="escalation threshold (0..1)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            model = cascade_train(name=opts["name"], threshold=opts["threshold"])
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Stage 1 '{model.name}' trained on {model.trained_on} labelled items; active.")
