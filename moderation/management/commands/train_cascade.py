from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.inference.services import cascade_train


class Command(BaseCommand):
    help = (
        "Train the cascade's stage-1 classifier on every labelled item in the database and activate it "
        "(routed by --target-accuracy, default CASCADE_TARGET_ACCURACY, or by a fixed --threshold)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", default="stage1")
        parser.add_argument("--threshold", type=float, default=None, help="fixed escalation entropy (0..1)")
        parser.add_argument("--target-accuracy", type=float, default=None, help="e.g. 0.92")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["threshold"] is not None and opts["target_accuracy"] is not None:
            raise CommandError("Give --threshold or --target-accuracy, not both.")
        try:
            model = cascade_train(
                name=opts["name"], threshold=opts["threshold"], target_accuracy=opts["target_accuracy"]
            )
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        routing = (
            f"target accuracy {model.target_accuracy:.2f} -> threshold {model.escalate_threshold:.3f}"
            if model.target_accuracy is not None
            else f"threshold {model.escalate_threshold:.3f}"
        )
        self.stdout.write(
            f"Stage 1 '{model.name}' ({model.metrics.get('chosen')}) trained on {model.trained_on} labelled items; "
            f"{routing}; active."
        )
