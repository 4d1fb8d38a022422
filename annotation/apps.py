from typing import Any

from django.apps import AppConfig

from workbench.queues import enqueue


def _check_disagreements(sender: Any, *, video_ids: list[int], **kwargs: Any) -> None:
    # robust: a broker hiccup must not fail the ingest; the periodic sweep (beat) catches up.
    enqueue("annotation.tasks.evaluate_disagreements", video_ids=video_ids, robust=True)


class AnnotationConfig(AppConfig):
    name = "annotation"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from annotation.services import tag2cot_release_on_logout
        from moderation.signals import feedback_received

        # A labeler who logs out frees the Tag2CoT tasks they held, so others need not wait for the lease.
        user_logged_out.connect(tag2cot_release_on_logout, dispatch_uid="annotation.tag2cot_release_on_logout")

        # New platform feedback may open adjudications (user-feedback disagreement rules live here).
        feedback_received.connect(_check_disagreements, dispatch_uid="annotation.check_disagreements")

        # The audit log leaves out, for staff who may not see a video, the events about its tasks.
        from annotation.models import Adjudication, Tag2CotTask
        from moderation.review.selectors import audit_object_videos_register

        audit_object_videos_register(model=Tag2CotTask, video_fields=("video_id",))
        audit_object_videos_register(model=Adjudication, video_fields=("video_id",))

        from annotation import home

        home.register()
