"""A queue edited after routing never stranded a video: the decisions its item awaited are routed again.

A queue that names its own model gets its item once that model has decided (``review_queue_decision``); until
then ``Video.routed_restricted`` closes the video to all but admins when that queue is restricted to groups.
Before, an edit after which the queue would never make the item (its model removed, the queue deleted, made
inactive, its filters or groups changed) left the flag for good: the video was the admins' alone, forever. Now
each edit path routes the decision again as the queues say now, in the edit's transaction; what another path
left (a flag older code set, a group deleted) is counted on the ops page and repaired by its button and by
``manage.py repair_routing``. A decided video lacking a decision under an auto-applied policy is repaired too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.urls import reverse

from moderation.inference.services import decision_create_for_video, model_version_register
from moderation.media.models import Video
from moderation.media.selectors import video_open_to
from moderation.models import Decision, ModelVersion
from moderation.policies.models import PolicyVersion
from moderation.review.models import AuditEvent, AwaitedQueueItem, ReviewQueue, ReviewTask
from moderation.review.selectors import videos_routing_stranded
from moderation.review.services import review_queue_decision
from tests.factories import DecidedVideoFactory, PolicyVersionFactory, UserFactory, VideoFactory
from tests.moderation.review.routing import client_for, decided_before_minors, queued_missing_decisions, staff
from tests.module_rows import refuse_transactional, rows_for_the_module

pytestmark = pytest.mark.django_db


@dataclass
class Routed:
    video: Video
    first: Decision  # the policy's serving model's decision, routed
    queue: ReviewQueue  # restricted to "seniors", names its own model: awaits the item
    outsider: User
    senior: User
    admin: User


def _routed_ids() -> dict[str, int]:
    policy_version = PolicyVersionFactory()
    seniors = Group.objects.create(name="seniors")
    own = model_version_register(name="seniors-model", backend="evidence_baseline")
    queue = ReviewQueue.objects.create(slug="seniors", name="Seniors", policy=policy_version.policy, model_version=own)
    queue.allowed_groups.add(seniors)
    video = VideoFactory(title="加微信 私聊")
    first = decision_create_for_video(video_id=video.pk)  # its queue-model task would run after the commit
    users = {"outsider": staff("moderator"), "senior": staff("moderator", "seniors"), "admin": staff("admin")}
    return {
        "policy_version": policy_version.pk,
        "queue": queue.pk,
        "video": video.pk,
        "first": first.pk,
        **{role: user.pk for role, user in users.items()},
    }


def _assert_open_to(w: Routed, *, outsider: bool, senior: bool) -> None:
    for user, sees in ((w.outsider, outsider), (w.senior, senior), (w.admin, True)):
        assert video_open_to(user=user, video_id=w.video.pk) is sees, user.groups.values_list("name", flat=True)


def _admin_save(queue: ReviewQueue, **changes: Any) -> None:
    """Save the queue's change form in the Django admin, as an admin would, with ``changes`` made."""
    admin = UserFactory(is_staff=True, is_superuser=True)
    data = {k: v for k, v in model_to_dict(queue).items() if k != "id"} | changes
    form: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            if value:
                form[key] = "on"
        elif key == "labels":
            form[key] = json.dumps(value)
        elif key == "allowed_groups":
            form[key] = [g.pk if hasattr(g, "pk") else g for g in value]
        else:
            form[key] = "" if value is None else value
    response = client_for(admin).post(reverse("admin:moderation_reviewqueue_change", args=[queue.pk]), form)
    assert response.status_code == 302, response.content.decode()[:3000]


class TestOneRoutedVideo:
    """The tests of one video routed to a restricted queue that names its own model (awaiting its item): built once
    for the class (``tests/module_rows.py``), read afresh by each test, whose changes are undone when it ends."""

    @pytest.fixture(scope="class")
    def routed_of_the_class(self, django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
        with rows_for_the_module(django_db_blocker, _routed_ids) as ids:
            yield ids

    @pytest.fixture
    def policy_version(self, db, routed_of_the_class):  # type: ignore[no-untyped-def]
        """The class's policy version, as the tests had it when ``routed`` was built from this fixture."""
        return PolicyVersion.objects.get(pk=routed_of_the_class["policy_version"])

    @pytest.fixture
    def routed(self, request, db, routed_of_the_class) -> Routed:  # type: ignore[no-untyped-def]
        ids = refuse_transactional(request, routed_of_the_class)
        w = Routed(
            video=Video.objects.get(pk=ids["video"]),
            first=Decision.objects.get(pk=ids["first"]),
            queue=ReviewQueue.objects.get(pk=ids["queue"]),
            outsider=User.objects.get(pk=ids["outsider"]),
            senior=User.objects.get(pk=ids["senior"]),
            admin=User.objects.get(pk=ids["admin"]),
        )
        assert AwaitedQueueItem.objects.filter(decision=w.first, queue=w.queue).exists()
        _assert_open_to(w, outsider=False, senior=False)  # the window: only admins until the item is made
        return w

    def test_a_queue_made_inactive_after_routing_routes_the_video_again(self, routed: Routed) -> None:
        w = routed
        _admin_save(w.queue, is_active=False)

        assert not AwaitedQueueItem.objects.exists()
        assert ReviewTask.objects.filter(decision=w.first, queue__slug=ReviewQueue.DEFAULT_SLUG).exists()
        _assert_open_to(w, outsider=True, senior=True)  # no queue restricts it now
        rerouted = AuditEvent.objects.get(action="decision.rerouted", object_id=str(w.first.pk))
        assert rerouted.payload == {"queues": ["default"], "reason": "queue seniors edited"}
        # The queue-model task queued at routing arrives late: nothing is owed, no model runs, no item is made.
        assert review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk) is None
        assert not ReviewTask.objects.filter(queue=w.queue).exists()
        assert not videos_routing_stranded().exists()

    def test_an_edit_that_keeps_the_queue_taking_the_item_changes_no_routing(self, routed: Routed) -> None:
        w = routed
        _admin_save(w.queue, priority=7, sla_seconds=3600)

        assert AwaitedQueueItem.objects.filter(decision=w.first, queue=w.queue).exists()
        assert not AuditEvent.objects.filter(action="decision.rerouted").exists()
        _assert_open_to(w, outsider=False, senior=False)

    def test_a_redelivered_run_does_not_route_a_decision_whose_queue_item_was_made(self, routed: Routed) -> None:
        """The item made by the queue's own model is under that model's decision; the first decision has none of its
        own. A redelivered inference run handed it to routing again, which awaited the queue's item once more (and
        closed the video to the seniors meanwhile, had the item not been found)."""
        w = routed
        review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk)
        routed_events = AuditEvent.objects.filter(action="decision.routed").count()

        assert decision_create_for_video(video_id=w.video.pk) == w.first

        assert not AwaitedQueueItem.objects.exists()
        assert AuditEvent.objects.filter(action="decision.routed").count() == routed_events
        _assert_open_to(w, outsider=False, senior=True)

    def test_a_queue_whose_groups_are_cleared_opens_the_video_it_awaits(self, routed: Routed) -> None:
        w = routed
        _admin_save(w.queue, allowed_groups=[])

        _assert_open_to(w, outsider=True, senior=True)
        assert AwaitedQueueItem.objects.filter(decision=w.first, queue=w.queue).exists()  # still its model's item
        review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk)
        assert ReviewTask.objects.filter(queue=w.queue, decision__video=w.video).exists()
        _assert_open_to(w, outsider=True, senior=True)

    def test_a_queue_given_other_filters_hands_the_video_to_the_queue_that_takes_it_now(
        self, routed: Routed, policy_version: Any
    ) -> None:
        """The seniors queue now takes only another label; a restricted queue that reviews the decision's own verdict
        takes this one, so its item is made at once and its group, not the seniors, opens the video."""
        w = routed
        experts = Group.objects.create(name="experts")
        other = ReviewQueue.objects.create(slug="experts", name="Experts", policy=policy_version.policy)
        other.allowed_groups.add(experts)
        expert = staff("moderator", "experts")
        _admin_save(w.queue, labels=["not-this-label"])

        assert not AwaitedQueueItem.objects.exists()
        assert ReviewTask.objects.filter(decision=w.first, queue=other).exists()
        assert not ReviewTask.objects.filter(decision=w.first, queue__slug=ReviewQueue.DEFAULT_SLUG).exists()
        _assert_open_to(w, outsider=False, senior=False)
        assert video_open_to(user=expert, video_id=w.video.pk)
        assert not Video.objects.get(pk=w.video.pk).routed_restricted  # closed by its item, not by waiting

    def test_a_queue_given_the_decisions_own_model_takes_the_item_at_once(self, routed: Routed) -> None:
        w = routed
        _admin_save(w.queue, model_version=w.first.model_version_id)

        [task] = ReviewTask.objects.filter(queue=w.queue)
        assert task.decision == w.first
        _assert_open_to(w, outsider=False, senior=True)
        assert not Video.objects.get(pk=w.video.pk).routed_restricted

    def test_deleting_a_queues_only_group_in_the_admin_opens_the_video_it_awaits(self, routed: Routed) -> None:
        w = routed
        admin = UserFactory(is_staff=True, is_superuser=True)
        group = Group.objects.get(name="seniors")
        assert (
            client_for(admin).post(reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"}).status_code
            == 302
        )

        assert not Group.objects.filter(name="seniors").exists()
        _assert_open_to(w, outsider=True, senior=True)  # the queue is open to every reviewer now
        assert not videos_routing_stranded().exists()

    def test_a_queue_deleted_in_the_admin_routes_the_video_again(self, routed: Routed) -> None:
        w = routed
        admin = UserFactory(is_staff=True, is_superuser=True)
        url = reverse("admin:moderation_reviewqueue_delete", args=[w.queue.pk])
        assert client_for(admin).post(url, {"post": "yes"}).status_code == 302

        assert not ReviewQueue.objects.filter(slug="seniors").exists()
        assert ReviewTask.objects.filter(decision=w.first, queue__slug=ReviewQueue.DEFAULT_SLUG).exists()
        _assert_open_to(w, outsider=True, senior=True)
        assert review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk) is None  # the late task: no-op

    def test_a_queue_whose_model_was_deleted_gets_its_item_under_the_first_decision(self, routed: Routed) -> None:
        """Deleting the model empties the queue's model (``SET_NULL``) without the queue's admin: the queue then
        reviews the decision's own verdict, so the queue-model task, when it runs, routes the item there."""
        w = routed
        ModelVersion.objects.filter(name="seniors-model").delete()

        assert review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk) is None
        assert ReviewTask.objects.get(queue=w.queue).decision == w.first
        _assert_open_to(w, outsider=False, senior=True)
        assert not AwaitedQueueItem.objects.exists() and not videos_routing_stranded().exists()

    def test_a_queue_made_inactive_while_its_model_runs_saves_no_decision_without_an_item(
        self, routed: Routed, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Before, the model's decision was saved, then the task found its item no longer awaited and left it there:
        a decision no queue would ever review. Now the answer is saved only if the item is still awaited."""
        w = routed
        _edit_while_the_model_runs(monkeypatch, lambda: _admin_save(w.queue, is_active=False))

        assert review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk) is None

        assert not Decision.objects.filter(video=w.video, model_version__name="seniors-model").exists()
        _every_decision_has_an_item(w.video)
        assert ReviewTask.objects.filter(decision=w.first, queue__slug=ReviewQueue.DEFAULT_SLUG).exists()
        assert not AwaitedQueueItem.objects.exists() and not videos_routing_stranded().exists()
        _assert_open_to(w, outsider=True, senior=True)

    def test_a_queue_given_another_model_while_its_model_runs_gets_the_new_models_item(
        self, routed: Routed, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
    ) -> None:
        """The edit keeps the queue awaiting the item (from its new model now): the old model's answer is dropped and
        the new model is asked, so the queue reviews the verdict of the model it names."""
        w = routed
        newer = model_version_register(name="seniors-model-2", backend="evidence_baseline")
        _edit_while_the_model_runs(monkeypatch, lambda: _admin_save(w.queue, model_version=newer.pk))

        with django_capture_on_commit_callbacks() as queued:
            assert review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk) is None
        assert not Decision.objects.filter(video=w.video, model_version__name="seniors-model").exists()
        assert [c.args[:3] for c in queued if getattr(c, "args", ())] == [
            ("moderation.review.tasks.run_queue_decision", "infer", [w.first.pk, w.queue.pk])
        ]
        _assert_open_to(w, outsider=False, senior=False)  # still awaited by the restricted queue

        monkeypatch.undo()
        made = review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk)  # the task queued above
        assert made is not None and made.model_version == newer
        assert ReviewTask.objects.get(queue=w.queue).decision == made
        _every_decision_has_an_item(w.video)
        _assert_open_to(w, outsider=False, senior=True)

    def test_the_ops_page_counts_stranded_videos_and_its_button_routes_them_again(self, routed: Routed) -> None:
        """A queue deactivated without its admin (a bulk update, a shell) and a flag older code left on a video whose
        queue is gone: both are counted on the ops page, and its button routes them as the queues say now."""
        w = routed
        legacy = VideoFactory(title="older code's flag")
        legacy_first = decision_create_for_video(video_id=legacy.pk)
        AwaitedQueueItem.objects.filter(decision=legacy_first).delete()  # as if its queue was deleted before 0041
        assert Video.objects.get(pk=legacy.pk).routed_restricted
        ReviewQueue.objects.filter(pk=w.queue.pk).update(is_active=False)
        assert not video_open_to(user=w.outsider, video_id=legacy.pk)
        assert set(videos_routing_stranded().values_list("pk", flat=True)) == {w.video.pk, legacy.pk}

        admin = client_for(w.admin)
        html = admin.get(reverse("moderation:ops_dashboard")).content.decode()
        assert "2</strong> stranded videos" in html and f"#{legacy.pk}" in html and "Repair routing" in html
        assert client_for(w.outsider).post(reverse("moderation:ops_routing_repair")).status_code == 403
        page = admin.post(reverse("moderation:ops_routing_repair"), follow=True).content.decode()
        assert "Routed 2 stranded videos again" in page and "No stranded video" in page

        _assert_open_to(w, outsider=True, senior=True)
        assert video_open_to(user=w.outsider, video_id=legacy.pk)
        assert not videos_routing_stranded().exists()
        assert ReviewTask.objects.filter(decision=legacy_first, queue__slug=ReviewQueue.DEFAULT_SLUG).exists()

    def test_repair_routing_command_clears_a_flag_a_deleted_group_left(self, routed: Routed) -> None:
        """Deleting the queue's only group outside the admin (a shell, a script) makes the queue open to all without routing
        again: the video stayed the admins'."""
        w = routed
        Group.objects.filter(name="seniors").delete()
        _assert_open_to(w, outsider=False, senior=False)
        out = StringIO()
        call_command("repair_routing", "--dry-run", stdout=out)
        assert f"1 stranded video(s) would be routed again: #{w.video.pk}" in out.getvalue()
        assert Video.objects.get(pk=w.video.pk).routed_restricted

        call_command("repair_routing", stdout=StringIO())
        _assert_open_to(w, outsider=True, senior=True)
        assert AwaitedQueueItem.objects.filter(decision=w.first, queue=w.queue).exists()  # its model still decides
        out = StringIO()
        call_command("repair_routing", stdout=out)
        assert "0 stranded video(s) routed again" in out.getvalue()

    def test_migration_0041_finds_the_items_routing_awaits_from_its_log(
        self, routed: Routed, policy_version: Any
    ) -> None:
        """Before 0041 nothing but routing's audit event said which queue awaited an item: 0041 reads the events, so a
        queue-model task still queued then finds what it owes (and the video stays closed until it is made); a flag
        left on a video whose restricted queue holds its item already is cleared (the rule ignored it); one whose
        queue is gone stays, for the repair."""
        import importlib

        from django.apps import apps

        migration = importlib.import_module("moderation.migrations.0041_awaited_queue_item")
        w = routed
        AwaitedQueueItem.objects.all().delete()  # as before 0041: only the audit event and the flag
        made = VideoFactory(title="its restricted item is made")
        made_first = decision_create_for_video(video_id=made.pk)
        review_queue_decision(decision_id=made_first.pk, queue_id=w.queue.pk)
        Video.objects.filter(pk=made.pk).update(routed_restricted=True)  # older code set it for made items too

        migration.awaited_items_from_routing_log(apps, None)

        assert list(AwaitedQueueItem.objects.values_list("decision_id", "queue_id")) == [(w.first.pk, w.queue.pk)]
        assert Video.objects.get(pk=w.video.pk).routed_restricted
        assert not Video.objects.get(pk=made.pk).routed_restricted
        assert not video_open_to(user=w.outsider, video_id=made.pk) and video_open_to(user=w.senior, video_id=made.pk)
        review_queue_decision(decision_id=w.first.pk, queue_id=w.queue.pk)
        _assert_open_to(w, outsider=False, senior=True)
        assert not videos_routing_stranded().exists()


def _edit_while_the_model_runs(monkeypatch: pytest.MonkeyPatch, edit: Any) -> None:
    """The queue's model answers only after ``edit`` (an admin's save) committed: the race a slow model leaves."""
    from moderation.inference import services

    real_get_backend = services.get_backend

    class EditedMeanwhile:
        def __init__(self, backend: Any) -> None:
            self.backend = backend

        def decide_batch(self, items: Any, spec: Any) -> Any:
            edit()
            return self.backend.decide_batch(items, spec)

    monkeypatch.setattr(services, "get_backend", lambda name, **kw: EditedMeanwhile(real_get_backend(name, **kw)))


def _every_decision_has_an_item(video: Video) -> None:
    """A queue model's decision exists only for its item (the first decision may hand its item to one)."""
    first = Decision.objects.filter(video=video).order_by("pk").first()
    for decision in Decision.objects.filter(video=video).exclude(pk=getattr(first, "pk", None)):
        assert ReviewTask.objects.filter(decision=decision).exists(), f"{decision.model_version} decided for no queue"


def test_a_half_decided_video_gets_its_missing_policys_decision_queued_and_routed(
    policy_version: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """Older code saved each policy's decision in its own transaction: a video decided under "kuaimod" only, while
    "minors" (routed to a restricted queue) auto-applies too, stayed open to every reviewer until a retry. The
    ops page counts it; the repair queues the missing policy's decision only (kuaimod's model does not run
    again), which routes it and closes it to those outside the restricted queue's group; a redelivered task
    runs no model."""
    from moderation.inference import services
    from moderation.inference.tasks import decide_missing_policies
    from moderation.policies.models import Policy
    from tests.factories import PolicyVersionFactory

    serving = model_version_register(name="minors-model", backend="evidence_baseline", base_model="minors-vlm")
    minors = Policy.objects.create(slug="minors", name="Minors", auto_apply=True, serving_model=serving)
    minors_version = PolicyVersionFactory(policy=minors)
    experts = Group.objects.create(name="minors-experts")
    ReviewQueue.objects.create(slug="minors", name="Minors", policy=minors).allowed_groups.add(experts)
    outsider, expert, admin = staff("moderator"), staff("moderator", "minors-experts"), staff("admin")
    video = VideoFactory(title="half decided")
    decisions_create = services.decisions_create_for_video
    decisions_create(video_id=video.pk, policy_versions=[policy_version])  # as older code left it
    done = DecidedVideoFactory()  # decided under kuaimod only too, but minors decided it as well
    decisions_create(video_id=done.pk)
    assert video_open_to(user=outsider, video_id=video.pk)

    html = client_for(admin).get(reverse("moderation:ops_dashboard")).content.decode()
    assert "1</strong> decided video lacks a decision under an auto-applied policy" in html
    assert f'href="{reverse("moderation:video_detail", args=[video.pk])}">#{video.pk}<' in html
    with django_capture_on_commit_callbacks() as queued:
        client_for(admin).post(reverse("moderation:ops_routing_repair"))
    assert [c.args[:3] for c in queued if getattr(c, "args", ())] == [
        ("moderation.inference.tasks.decide_missing_policies", "infer", [video.pk])
    ]

    real_get_backend = services.get_backend

    def only_minors(name: str, **kwargs: Any) -> Any:
        if kwargs.get("base_model") != "minors-vlm":
            pytest.fail("the policy that decided the video already was asked again")
        return real_get_backend(name, **kwargs)

    monkeypatch.setattr(services, "get_backend", only_minors)
    assert decide_missing_policies.run(video.pk) == 1
    [made] = Decision.objects.filter(video=video, policy_version=minors_version)
    assert ReviewTask.objects.filter(decision=made, queue__slug="minors").exists()
    assert not video_open_to(user=outsider, video_id=video.pk)
    assert video_open_to(user=expert, video_id=video.pk)

    monkeypatch.setattr(services, "get_backend", lambda *a, **k: pytest.fail("a second inference"))
    assert decide_missing_policies.run(video.pk) == 0
    html = client_for(admin).get(reverse("moderation:ops_dashboard")).content.decode()
    assert "Every decided video has a decision under each auto-applied policy." in html


@dataclass
class HalfDecided:
    videos: list[Video]  # decided under kuaimod only, before "minors" was made auto-applied
    minors_model: ModelVersion
    admin: User


@pytest.fixture
def half_decided(policy_version: Any) -> HalfDecided:
    videos = [DecidedVideoFactory(title=f"decided before minors {i}") for i in range(3)]
    serving = decided_before_minors(videos)
    return HalfDecided(videos=videos, minors_model=serving, admin=staff("admin"))


def test_a_failing_missing_decision_is_recorded_shown_and_given_up_after_three_tries(
    half_decided: HalfDecided, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """Before, a failed missing-policy decision was only logged, and every click of Repair routing queued it
    again. Now the failure is a row with its error on the ops page; after three the repair stops queueing it,
    and the page's Retry gives it one more try."""
    from moderation.inference import services
    from moderation.inference.tasks import decide_missing_policies
    from moderation.models import MissingDecisionRepair

    w = half_decided
    [video, *_] = w.videos
    real_get_backend = services.get_backend

    def minors_out_of_memory(name: str, **kwargs: Any) -> Any:
        if kwargs.get("base_model") == "minors-vlm":
            raise RuntimeError("CUDA out of memory while loading minors-vlm")
        return real_get_backend(name, **kwargs)

    monkeypatch.setattr(services, "get_backend", minors_out_of_memory)
    admin, ops = client_for(w.admin), reverse("moderation:ops_dashboard")
    for attempt in (1, 2, 3):
        with django_capture_on_commit_callbacks() as queued:
            admin.post(reverse("moderation:ops_routing_repair"))
        assert video.pk in queued_missing_decisions(queued), attempt
        assert decide_missing_policies.run(video.pk) == 0
        failure = MissingDecisionRepair.objects.get(video=video)
        assert failure.attempts == attempt and "CUDA out of memory" in failure.error

    html = admin.get(ops).content.decode()
    assert "CUDA out of memory while loading minors-vlm" in html and "3 (given up)" in html
    assert "1 given up after 3 failed tries" in html and "Retry 1 given-up video" in html
    with django_capture_on_commit_callbacks() as queued:
        admin.post(reverse("moderation:ops_routing_repair"))
    assert video.pk not in queued_missing_decisions(queued)  # no fourth try by the repair

    monkeypatch.undo()  # the model works again
    assert client_for(staff("moderator")).post(reverse("moderation:ops_missing_decisions_retry")).status_code == 403
    with django_capture_on_commit_callbacks() as queued:
        page = admin.post(reverse("moderation:ops_missing_decisions_retry"), follow=True).content.decode()
    assert queued_missing_decisions(queued) == [video.pk]
    assert "Queued the missing decisions of 1 half-decided video once more" in page
    assert decide_missing_policies.run(video.pk) == 1
    assert not MissingDecisionRepair.objects.filter(video=video).exists()
    assert Decision.objects.filter(video=video, model_version=w.minors_model).exists()
    assert "CUDA out of memory" not in admin.get(ops).content.decode()


def test_the_repair_says_how_many_videos_are_left_and_the_next_click_continues(
    half_decided: HalfDecided, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Videos decided before a policy was made auto-applied may be many; a click queues a batch. The page says how
    many clicks the rest takes, the message how many are left, and the next click queues the next batch, not the
    same videos again (their tasks are queued)."""
    settings.ROUTING_REPAIR_BATCH = 2
    w = half_decided
    admin, ops = client_for(w.admin), reverse("moderation:ops_dashboard")
    html = admin.get(ops).content.decode()
    assert "3</strong> decided videos lack" in html and "3 not queued yet, 0 queued" in html
    assert "at most 2 videos of each kind a click: 2 clicks" in html

    with django_capture_on_commit_callbacks() as queued:
        page = admin.post(reverse("moderation:ops_routing_repair"), follow=True).content.decode()
    first = queued_missing_decisions(queued)
    assert len(first) == 2
    assert "1 half-decided video still to repair (at most 2 of each a click): click Repair routing again" in page
    assert "1 not queued yet, 2 queued on the infer queue" in page

    with django_capture_on_commit_callbacks() as queued:
        page = admin.post(reverse("moderation:ops_routing_repair"), follow=True).content.decode()
    second = queued_missing_decisions(queued)
    assert sorted(first + second) == sorted(v.pk for v in w.videos)
    assert "still to repair" not in page and "0 not queued yet, 3 queued" in page
    assert "Repair routing</button>" not in page  # nothing left for it to do


def test_repair_routing_all_queues_every_batch(
    half_decided: HalfDecided, django_capture_on_commit_callbacks: Any
) -> None:
    w = half_decided
    out = StringIO()
    with django_capture_on_commit_callbacks() as queued:
        call_command("repair_routing", "--limit", "1", stdout=out)
    first = queued_missing_decisions(queued)
    assert len(first) == 1
    assert "left: 0 stranded, 0 inconsistent and 2 half-decided video(s) (run again to continue, or with --all)" in (
        out.getvalue()
    )
    out = StringIO()
    with django_capture_on_commit_callbacks() as queued:
        call_command("repair_routing", "--limit", "1", "--all", stdout=out)
    assert sorted(first + queued_missing_decisions(queued)) == sorted(v.pk for v in w.videos)
    assert "left:" not in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_queue_deleted_while_its_model_answers_is_waited_for_and_nothing_is_saved(
    policy_version: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two connections: the admin's delete holds the queue's row and has not yet routed the video when the model
    answers. The task's save waits for the delete (it takes the queue's row before the video's, as the delete
    does, so neither waits on the other in a cycle: no deadlock aborts one), then finds the queue gone and saves
    nothing; the delete routed the decision to the default queue."""
    import threading

    from django.db import connection, transaction

    from moderation.inference import services
    from moderation.review.services import review_queues_delete

    own = model_version_register(name="seniors-model", backend="evidence_baseline")
    queue = ReviewQueue.objects.create(slug="seniors", name="Seniors", policy=policy_version.policy, model_version=own)
    queue.allowed_groups.add(Group.objects.create(name="seniors"))
    video = VideoFactory(title="加微信 私聊")
    first = decision_create_for_video(video_id=video.pk)
    holding, go, errors = threading.Event(), threading.Event(), []

    def admin_deletes() -> None:
        try:
            with transaction.atomic():
                ReviewQueue.objects.select_for_update().filter(pk=queue.pk).first()  # the delete's first lock
                holding.set()
                go.wait(10)
                review_queues_delete(queue_ids=[queue.pk])  # then the video's, routing the decision again
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    admin = threading.Thread(target=admin_deletes)
    real_get_backend = services.get_backend

    class AnswersWhileTheAdminHoldsTheQueue:
        def __init__(self, backend: Any) -> None:
            self.backend = backend

        def decide_batch(self, items: Any, spec: Any) -> Any:
            admin.start()
            assert holding.wait(10)
            threading.Timer(0.5, go.set).start()  # the admin goes on while the task waits for the queue's row
            return self.backend.decide_batch(items, spec)

    monkeypatch.setattr(
        services, "get_backend", lambda n, **kw: AnswersWhileTheAdminHoldsTheQueue(real_get_backend(n, **kw))
    )

    assert review_queue_decision(decision_id=first.pk, queue_id=queue.pk) is None
    admin.join(10)
    assert errors == []
    assert not ReviewQueue.objects.filter(slug="seniors").exists()
    assert not Decision.objects.filter(video=video, model_version=own).exists()
    assert ReviewTask.objects.filter(decision=first, queue__slug=ReviewQueue.DEFAULT_SLUG).exists()
    assert not AwaitedQueueItem.objects.exists() and not Video.objects.get(pk=video.pk).routed_restricted
