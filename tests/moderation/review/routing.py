"""What the routing-repair tests share (test_stranded_routing, test_given_up_repairs): staff users and their
clients, the videos a request queued for their missing decisions, and videos decided before "minors" auto-applied."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.test import Client

from moderation.inference.services import decision_create_for_video, model_version_register
from moderation.media.models import Video
from moderation.models import ModelVersion
from moderation.policies.models import Policy
from tests.factories import PolicyVersionFactory, UserFactory


def staff(*roles: str) -> User:
    """A new user in the groups of ``roles``."""
    user = UserFactory()
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def queued_missing_decisions(callbacks: Any) -> list[int]:
    """The videos whose missing decisions a request queued (on the infer queue)."""
    return [
        c.args[2][0]
        for c in callbacks
        if getattr(c, "args", ()) and c.args[0] == "moderation.inference.tasks.decide_missing_policies"
    ]


def decided_before_minors(videos: list[Video]) -> ModelVersion:
    """Decide each of ``videos`` under the active policy only, then make "minors" auto-applied with its own serving
    model (returned): every one of them now lacks its minors decision."""
    for video in videos:
        decision_create_for_video(video_id=video.pk)
    serving = model_version_register(name="minors-model", backend="evidence_baseline", base_model="minors-vlm")
    minors = Policy.objects.create(slug="minors", name="Minors", auto_apply=True, serving_model=serving)
    PolicyVersionFactory(policy=minors)
    return serving
