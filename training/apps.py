from typing import Any

from django.apps import AppConfig

from workbench.queues import enqueue


def _shadow_decide(sender: Any, *, decision_id: int, **kwargs: Any) -> None:
    # A no-op task when no candidate is in shadow mode.
    enqueue("training.tasks.run_shadow_decision", decision_id)


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self) -> None:
        from moderation.signals import decision_recorded

        # Shadow mode: candidate models decide every live item beside the serving model.
        decision_recorded.connect(_shadow_decide, dispatch_uid="training.shadow_decide")

        from training import home

        home.register()
