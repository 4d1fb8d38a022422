from typing import Any

from django.core.management.base import BaseCommand

from moderation.policies.services import policy_seed_kuaimod


class Command(BaseCommand):
    help = "Create the KuaiMod policy with an active first version if it does not exist."

    def handle(self, *args: Any, **opts: Any) -> None:
        version = policy_seed_kuaimod()
        self.stdout.write(f"Active policy: {version}")
