"""`manage.py train_tag_ranker`: retrain the tag ranker and per-tag classifiers from reviewers' events."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError


def _os_user() -> str:
    """Who runs this command on the machine (the run records it), or nothing where the OS cannot say."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment and no passwd entry (a bare container)
        return ""


class Command(BaseCommand):
    help = (
        "Retrain the tag ranker (logistic regression once enough accept/reject/add events exist) and classifiers; "
        "the run is recorded and listed on the ranker page, with --by's user and the OS user who ran it. It trains "
        "even when no reviewer event arrived since the last run (the hourly beat then skips)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--min-events", type=int, default=None)
        parser.add_argument(
            "--by", metavar="USERNAME", default="", help="the workbench user this run is recorded for (optional)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from django.contrib.auth.models import User

        from moderation.errors import ModerationError
        from moderation.tagging.models import TagRankerTraining
        from moderation.tagging.selectors import tag_ranker_events_since, tag_ranker_run_summary
        from moderation.tagging.services import tag_ranker_train

        user = None
        if opts["by"]:
            user = User.objects.filter(username=opts["by"]).first()
            if user is None:
                raise CommandError(f"No workbench user “{opts['by']}”: --by takes a username; nothing was trained.")
        since = tag_ranker_events_since()
        if since.previous is not None and not since.new_events:
            self.stdout.write(
                f"No reviewer event since run #{since.previous.pk} read them: training on the same events, as asked."
            )
        try:
            run = tag_ranker_train(
                user=user, min_events=opts["min_events"], trigger=TagRankerTraining.Trigger.COMMAND, operator=_os_user()
            )
        except ModerationError as exc:
            raise CommandError(f"{exc} Nothing was trained.") from exc
        line = f"tag ranker training run #{run.pk}: {tag_ranker_run_summary(run=run)}"
        if run.status == TagRankerTraining.Status.FAILED:
            raise CommandError(line)
        self.stdout.write(line)
