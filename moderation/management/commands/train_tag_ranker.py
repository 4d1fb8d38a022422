"""`manage.py train_tag_ranker`: retrain the tag ranker and per-tag classifiers from reviewers' events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Retrain the tag ranker (logistic regression once enough accept/reject/add events exist) and classifiers."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--min-events", type=int, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        from moderation.tagging.services import tag_ranker_train

        ranker = tag_ranker_train(min_events=opts["min_events"])
        self.stdout.write(
            f"tag ranker #{ranker.pk}: {ranker.get_kind_display()} from {ranker.n_events} events on "
            f"{ranker.n_videos} videos {ranker.metrics}"
        )
