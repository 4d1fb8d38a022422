"""The visibility rule as the screens apply it (its SQL cached: ``_OpenToOthers``; memberships read alone) finds
exactly the videos the rule as first written finds (compiled in place on each query: ``_rule_as_an_or`` below,
the reference), for every case of ``_item_rules``, every kind of user and every shape of query the screens put it
in; the one difference, anonymous in a group without members, is a fix (``test_anonymous_is_in_no_group``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When

from moderation.media import selectors
from moderation.media.models import Video
from moderation.review.models import ReviewQueue, ReviewTask
from moderation.review.services import review_queue_default
from tests.factories import DecisionFactory, PolicyFactory, PolicyVersionFactory, UserFactory, VideoFactory

pytestmark = pytest.mark.django_db

Rule = Callable[[str], Q]


def _rule_as_an_or(*, user_pk: int | None, field: str) -> Q:
    """The rule as main had it at a1230eb: decided and not closed, or the user's own upload not decided yet; a
    queue open to the user through ``allowed_groups__user``."""
    open_to_user = Q(queue__allowed_groups__isnull=True) | Q(queue__allowed_groups__user__pk=user_pk)
    closing, pending = selectors._item_rules(video_id=OuterRef(field), opens=open_to_user)
    decided = apps.get_model("moderation", "Decision").objects.filter(video_id=OuterRef(field))
    after_routing = Q(Exists(decided)) & ~Q(Exists(closing)) & ~Q(Exists(pending))
    if user_pk is None:
        return after_routing
    own_upload = Video.objects.filter(pk=OuterRef(field), created_by_id=user_pk)
    return after_routing | (~Q(Exists(decided)) & Q(Exists(own_upload)))


def _library(outsider: User, expert: User) -> dict[str, Video]:
    """One video per case of the rule (``_item_rules``' docstring), by name."""
    experts = Group.objects.create(name="experts")
    restricted = ReviewQueue.objects.create(slug="experts", name="Experts")
    leads = Group.objects.create(name="leads")
    UserFactory().groups.add(leads)  # a group with members (``test_anonymous_is_in_no_group``: one without)
    restricted.allowed_groups.add(experts, leads)  # two groups: the expert in one
    restricted_tags = ReviewQueue.objects.create(slug="expert-tags", name="Expert tags", kind=ReviewQueue.Kind.TAGS)
    restricted_tags.allowed_groups.add(experts)
    open_tags = ReviewQueue.objects.create(slug="tags", name="Tags", kind=ReviewQueue.Kind.TAGS)
    default = review_queue_default()
    policy_a = PolicyVersionFactory()
    policy_b = PolicyVersionFactory(policy=PolicyFactory(slug="other", name="Other"))
    videos: dict[str, Video] = {}

    def decided(name: str, *items: tuple[Any, Any], **fields: Any) -> Video:
        video = videos[name] = VideoFactory(**fields)
        decisions = {pv: DecisionFactory(video=video, policy_version=pv) for pv in (policy_a, policy_b)}
        for queue, policy_version in items:
            ReviewTask.objects.create(decision=decisions[policy_version], queue=queue, status=ReviewTask.Status.DONE)
        return video

    decided("plain")
    decided("restricted", (restricted, policy_a))
    decided("shared_same_policy", (restricted, policy_a), (default, policy_a))
    decided("open_other_policy_only", (restricted, policy_a), (default, policy_b))
    decided("pending_routed_restricted", routed_restricted=True)
    decided("routed_restricted_made_and_shared", (restricted, policy_a), (default, policy_a), routed_restricted=True)
    decided("routed_restricted_tags_item_only", (restricted_tags, policy_a), routed_restricted=True)
    decided("restricted_tags_item", (restricted_tags, policy_a))
    decided("restricted_tags_item_and_open_item", (restricted_tags, policy_a), (default, policy_a))
    decided("restricted_with_open_tags_item", (restricted, policy_a), (open_tags, policy_a))
    decided("own_decided_restricted", (restricted, policy_a), created_by=outsider)
    videos["own_undecided"] = VideoFactory(created_by=outsider)
    # Not decided (its decisions deleted) with the flag routing left: still its uploader's.
    videos["own_undecided_flagged"] = VideoFactory(created_by=outsider, routed_restricted=True)
    videos["experts_undecided"] = VideoFactory(created_by=expert)
    videos["nobodys_undecided"] = VideoFactory()
    return videos


def _shapes(rule: Rule, user_pk: int | None) -> dict[str, QuerySet[Any]]:
    """The rule in each shape the screens give it: on videos, through a column and through a join, negated, in a
    subquery (its aliases bumped), OR-ed and in a CASE (``videos_listed_for``)."""
    from moderation.inference.models import Decision

    listed = Case(When(rule("pk"), then=Value(False)), default=Value(True), output_field=BooleanField())
    return {
        "videos": Video.objects.filter(rule("pk")).values_list("pk", flat=True),
        "hidden videos": Video.objects.exclude(rule("pk")).values_list("pk", flat=True),
        "decisions": Decision.objects.filter(rule("video_id")).values_list("video_id", flat=True),
        "items": ReviewTask.objects.filter(rule("decision__video_id")).values_list("decision__video_id", flat=True),
        "in a subquery": Video.objects.filter(
            pk__in=Decision.objects.filter(~rule("video_id")).values("video_id")
        ).values_list("pk", flat=True),
        "listed": Video.objects.filter(rule("pk") | Q(created_by_id=user_pk))
        .annotate(closed=listed)
        .values_list("pk", "closed"),
    }


def _seen(rule: Rule, user_pk: int | None) -> dict[str, list[Any]]:
    return {name: sorted(qs) for name, qs in _shapes(rule, user_pk).items()}


def test_the_rule_finds_what_it_found_as_an_or_compiled_in_place() -> None:
    outsider, expert = UserFactory(role="moderator"), UserFactory(role="moderator")
    videos = _library(outsider, expert)
    expert.groups.add(Group.objects.get(name="experts"))
    names = {v.pk: name for name, v in videos.items()}
    for user in (outsider, expert, UserFactory(), AnonymousUser()):
        pk = user.pk
        for _ in range(2):  # compiled, then from the cache
            assert selectors.video_open_to_q(user=user) == selectors.video_open_to_others_q(user_pk=pk)
            reference = _seen(lambda field, pk=pk: _rule_as_an_or(user_pk=pk, field=field), pk)
            in_place = _seen(lambda field, pk=pk: selectors._open_to_others_rule(user_pk=pk, field=field), pk)
            cached = _seen(lambda field, pk=pk: selectors.video_open_to_others_q(user_pk=pk, field=field), pk)
            assert in_place == reference, user
            assert cached == reference, user
        seen = {names[pk] for pk in cached["videos"]}
        if user == outsider:
            assert seen == {
                "plain",
                "shared_same_policy",
                "routed_restricted_made_and_shared",
                "restricted_tags_item_and_open_item",
                "own_undecided",
                "own_undecided_flagged",
            }
        elif user == expert:
            # Only a moderation queue's item opens a video: a restricted tags item alone closes it to its group too.
            assert seen == set(names.values()) - {
                "restricted_tags_item",
                "pending_routed_restricted",
                "routed_restricted_tags_item_only",
                "own_undecided",
                "own_undecided_flagged",
                "nobodys_undecided",
            }
        elif user.pk is None:
            assert seen == {
                "plain",
                "shared_same_policy",
                "routed_restricted_made_and_shared",
                "restricted_tags_item_and_open_item",
            }


def test_the_rule_is_compiled_once_per_user_and_place() -> None:
    user = UserFactory(role="moderator")
    selectors._open_to_others_sql.cache_clear()
    for _ in range(3):
        list(Video.objects.filter(selectors.video_open_to_q(user=user)))
        list(ReviewTask.objects.filter(selectors.video_open_to_q(user=user, field="decision__video_id")))
    info = selectors._open_to_others_sql.cache_info()
    assert (info.misses, info.hits) == (2, 4)


def test_anonymous_is_in_no_group_even_one_without_members() -> None:
    """The one case where the rule differs from main's (a1230eb): for an anonymous user (no id) that read
    ``allowed_groups__user__pk=None``, which Django compiles to ``IS NULL``, true of a group without members, so a
    queue restricted to such a group opened its videos to anonymous. Now anonymous is in no group."""
    empty = Group.objects.create(name="nobody yet")
    queue = ReviewQueue.objects.create(slug="new-team", name="New team")
    queue.allowed_groups.add(empty)
    video = VideoFactory()
    ReviewTask.objects.create(decision=DecisionFactory(video=video), queue=queue)
    assert Video.objects.filter(_rule_as_an_or(user_pk=None, field="pk")).exists()  # what it read before
    assert not Video.objects.filter(selectors.video_open_to_q(user=AnonymousUser())).exists()
    assert not selectors.video_open_to(user=AnonymousUser(), video_id=video.pk)
