from typing import Any

from django.core.management.base import BaseCommand

from moderation.policies.services import policy_seed_blm_guard, policy_seed_kuaimod


class Command(BaseCommand):
    help = (
        "Create the KuaiMod policy and the BLM-Guard advertising policy, each with an active first version, "
        "if they do not exist."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        for seed in (policy_seed_kuaimod, policy_seed_blm_guard):
            version = seed()
            self.stdout.write(f"Active policy: {version} ({version.get_output_format_display()})")
