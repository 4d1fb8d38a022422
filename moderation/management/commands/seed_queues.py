from typing import Any

from django.core.management.base import BaseCommand

from moderation.review.services import review_queue_default, review_queue_senior_default


class Command(BaseCommand):
    help = (
        "Create the default review queue and, once, its senior queue (“Senior review”, slug senior) to escalate to; "
        "a default queue that already escalates somewhere keeps its queue."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        default = review_queue_default()
        senior = review_queue_senior_default()
        if senior is None:
            self.stdout.write(f"Review queue “{default.name}”: no escalation queue (an admin unlinked it).")
        else:
            self.stdout.write(f"Review queue “{default.name}” escalates to “{senior.name}”.")
