from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from moderation.review.services import review_release_on_logout

        # A reviewer who logs out frees the items they held, so others need not wait for the lease.
        user_logged_out.connect(review_release_on_logout, dispatch_uid="moderation.review_release_on_logout")
