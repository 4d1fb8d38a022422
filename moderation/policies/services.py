from __future__ import annotations

from django.db import transaction

from moderation.errors import ModerationError
from moderation.policies.models import Policy, PolicyVersion
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy


@transaction.atomic
def policy_seed_kuaimod() -> PolicyVersion:
    """Create the KuaiMod policy with a published, active first version (idempotent)."""
    policy, _ = Policy.objects.get_or_create(slug="kuaimod", defaults={"name": "KuaiMod taxonomy"})
    active = policy.versions.filter(is_active=True).first()
    if active is not None:
        return active
    return PolicyVersion.objects.create(
        policy=policy,
        number=(policy.versions.count() + 1),
        status=PolicyVersion.Status.PUBLISHED,
        is_active=True,
        safe_label=SAFE_LABEL,
        taxonomy=kuaimod_taxonomy(),
        notes="Seeded from the KuaiMod benchmark taxonomy.",
    )


def policy_version_active(*, slug: str = "kuaimod") -> PolicyVersion:
    version = PolicyVersion.objects.filter(policy__slug=slug, is_active=True).select_related("policy").first()
    if version is None:
        raise ModerationError(f"Policy '{slug}' has no active version; run `manage.py bootstrap` first.")
    return version
