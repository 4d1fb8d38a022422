"""`manage.py train_tag_ranker`: retrain the tag ranker and per-tag classifiers from reviewers' events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Retrain the tag ranker (logistic regression once enough accept/reject/add events exist) and classifiers; "
        "the run is recorded and listed on the ranker page."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--min-events", type=int, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        from moderation.tagging.models import TagRankerTraining
        from moderation.tagging.selectors import tag_ranker_run_summary
        from moderation.tagging.services import tag_ranker_train

        run = tag_ranker_train(min_events=opts["min_events"], trigger=TagRankerTraining.Trigger.COMMAND)
        line = f"tag ranker training run #{run.pk}: {tag_ranker_run_summary(run=run)}"
        if run.status == TagRankerTraining.Status.FAILED:
            raise CommandError(line)
        self.stdout.write(line)
