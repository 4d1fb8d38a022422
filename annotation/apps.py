from typing import Any

from django.apps import AppConfig

from workbench.queues import enqueue


def _check_disagreements(sender: Any, *, video_ids: list[int], **kwargs: Any) -> None:
    # robust: a broker hiccup must not fail the ingest; the periodic sweep (beat) catches up.
    enqueue("annotation.tasks.evaluate_disagreements", video_ids=video_ids, robust=True)


class AnnotationConfig(AppConfig):
    name = "annotation"

    def ready(self) -> None:
        from moderation.signals import feedback_received

        # New platform feedback may open adjudications (user-feedback disagreement rules live here).
        feedback_received.connect(_check_disagreements, dispatch_uid="annotation.check_disagreements")

        from annotation import home

        home.register()
