"""Content routed to a group-restricted review queue is seen only by that queue's groups and admins.

Before, the group rule only decided who may *work* the queue: any moderator could still open such a video's
page, its tag panel, media files, its correction / Tag2CoT / adjudication / pair screens and read it through the
API. Hidden is 404 (its existence is not revealed); lists leave it out. A video also in an open queue stays
visible, and a decided item still counts (the content is still sensitive).
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import Adjudication, Tag2CotTask
from moderation.media.models import Keyframe, Video
from moderation.media.selectors import video_open_to, videos_open_to
from moderation.policies.services import policy_version_create_draft
from moderation.reproduction.models import ReproCandidate
from moderation.review.models import AuditEvent, ReviewQueue, ReviewTask
from moderation.review.services import audit_event_record
from moderation.tagging.models import TagProposal, TagProposalSighting
from tests.factories import (
    DecisionFactory,
    ModelVersionFactory,
    ReviewTaskFactory,
    SegmentFactory,
    TagTaskFactory,
    UserFactory,
    VideoFactory,
)

pytestmark = pytest.mark.django_db


@dataclass
class World:
    hidden: Video  # only in the experts queue (its item decided: still hidden)
    shared: Video  # in the experts queue and the open default queue
    plain: Video  # in no restricted queue
    task: ReviewTask
    urls: list[str]
    outsider: User
    expert: User
    admin: User


def _staff(*roles: str, **kwargs: Any) -> User:
    user = UserFactory(**kwargs)
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


@pytest.fixture
def world(policy_version: Any) -> World:
    experts = Group.objects.create(name="experts")
    queue = ReviewQueue.objects.create(slug="experts", name="Experts")
    queue.allowed_groups.add(experts)
    task = ReviewTaskFactory(decision__policy_version=policy_version, queue=queue, status=ReviewTask.Status.DONE)
    decision = task.decision
    hidden = decision.video
    frame = default_storage.save("keyframes/hidden.jpg", ContentFile(b"jpeg bytes"))
    Keyframe.objects.create(video=hidden, index=0, timestamp=0.5, image=frame)
    shared_task = ReviewTaskFactory(decision__policy_version=policy_version, queue=queue)
    ReviewTaskFactory(decision=shared_task.decision)  # also in the default queue, open to all
    plain = VideoFactory()
    DecisionFactory(video=plain, policy_version=policy_version)
    tag2cot = Tag2CotTask.objects.create(
        video=hidden, decision=decision, policy_version=policy_version, target_label="正向"
    )
    adjudication = Adjudication.objects.create(video=hidden, decision=decision, kind="reported_pass", reason="r")
    tags = ReviewQueue.objects.create(slug="expert-tags", name="Expert tags", kind=ReviewQueue.Kind.TAGS)
    tags.allowed_groups.add(experts)
    tag_task = TagTaskFactory(decision=decision, queue=tags)
    pair = ReproCandidate.objects.create(video=plain, original=hidden, score=0.9)
    urls = [
        reverse("moderation:video_detail", args=[hidden.pk]),
        reverse("moderation:tag_panel", args=[hidden.pk]),
        reverse("moderation:tag_task", args=[tag_task.pk]),
        reverse("moderation:review_task", args=[task.pk]),
        reverse("moderation:review_cot", args=[task.pk]),
        reverse("moderation:repro_pair", args=[pair.pk]),
        reverse("annotation:correction_edit", args=[decision.pk]),
        reverse("annotation:tag2cot_write", args=[tag2cot.pk]),
        reverse("annotation:adjudication_detail", args=[adjudication.pk]),
        reverse("moderation:api-video-detail", args=[hidden.pk]),
        reverse("moderation:api-decision-detail", args=[decision.pk]),
        reverse("media", args=[hidden.file.name]),
        reverse("media", args=[frame]),
    ]
    return World(
        hidden=hidden,
        shared=shared_task.decision.video,
        plain=plain,
        task=task,
        urls=urls,
        outsider=_staff("moderator", "labeler"),
        expert=_staff("moderator", "labeler", "experts"),
        admin=_staff("admin"),
    )


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_rule(world: World) -> None:
    for user, sees_hidden in ((world.outsider, False), (world.expert, True), (world.admin, True)):
        seen = set(videos_open_to(user=user).values_list("pk", flat=True))
        assert seen == {world.shared.pk, world.plain.pk} | ({world.hidden.pk} if sees_hidden else set()), user
        assert video_open_to(user=user, video_id=world.hidden.pk) is sees_hidden
        assert video_open_to(user=user, video_id=world.shared.pk)


def test_an_outsider_gets_404_on_every_read_path_of_a_restricted_video(world: World) -> None:
    client = _client(world.outsider)
    for url in world.urls:
        assert client.get(url).status_code == 404, url
    for action in ("moderation:tag_submit", "moderation:tag_try_again", "moderation:video_retry"):
        assert client.post(reverse(action, args=[world.hidden.pk])).status_code == 404, action
    # "Claim next" on the pair queue never hands out a pair with a hidden video.
    assert client.post(reverse("moderation:repro_claim_next"))["Location"] == reverse("moderation:repro_queue")


def test_the_queue_groups_and_admins_still_open_them(world: World) -> None:
    for user in (world.expert, world.admin):
        client = _client(user)
        for url in world.urls:
            if "/review/" in url:  # another reviewer's decided item is refused as before: not by this rule
                continue
            assert client.get(url).status_code == 200, (user, url)
    pair = ReproCandidate.objects.get()
    claimed = _client(world.expert).post(reverse("moderation:repro_claim_next"))
    assert claimed["Location"] == reverse("moderation:repro_pair", args=[pair.pk])


def test_lists_leave_a_restricted_video_out_for_an_outsider(world: World) -> None:
    hidden, shared = world.hidden, world.shared
    lists = {
        reverse("moderation:video_list"): f"/videos/{hidden.pk}/",
        reverse("annotation:correction_list"): f"/corrections/{world.task.decision_id}/",
        reverse("annotation:adjudication_list"): f"/adjudications/{Adjudication.objects.get().pk}/",
        reverse("annotation:tag2cot_list"): f"/tag2cot/{Tag2CotTask.objects.get().pk}/",
        reverse("moderation:repro_queue"): f'title="{hidden.title}"',  # rows name the videos
    }
    for user, sees in ((world.outsider, False), (world.expert, True), (world.admin, True)):
        client = _client(user)
        for url, link in lists.items():
            assert (link in client.get(url).content.decode()) is sees, (user, url)
        assert f"/videos/{shared.pk}/" in client.get(reverse("moderation:video_list")).content.decode()
        api = {row["id"] for row in client.get(reverse("moderation:api-video-list")).json()["results"]}
        assert (hidden.pk in api) is sees and shared.pk in api, user
        decisions = client.get(reverse("moderation:api-decision-list"), {"video": hidden.pk}).json()["results"]
        assert bool(decisions) is sees, user


def test_uploading_a_restricted_videos_bytes_again_does_not_name_it_to_an_outsider(world: World) -> None:
    payload = b"\x00\x00\x00\x18ftypmp42" + b"z" * 4096
    Video.objects.filter(pk=world.hidden.pk).update(sha256=hashlib.sha256(payload).hexdigest())
    for user, named in ((world.outsider, False), (world.expert, True)):
        upload = {"file": SimpleUploadedFile("again.mp4", payload), "title": "again"}
        text = _client(user).post(reverse("moderation:video_upload"), upload, follow=True).content.decode()
        assert "already uploaded" in text, user
        assert (reverse("moderation:video_detail", args=[world.hidden.pk]) in text) is named, user
    assert Video.objects.count() == 3


def test_submitting_a_restricted_videos_bytes_through_the_api_does_not_describe_it_to_an_outsider(
    world: World,
) -> None:
    """The web form said only "already uploaded"; POST /api/videos/ answered the hidden video itself (its id,
    title, description, uploader, status) to any user who may upload and holds the same bytes."""
    payload = b"\x00\x00\x00\x18ftypmp42" + b"q" * 4096
    Video.objects.filter(pk=world.hidden.pk).update(
        sha256=hashlib.sha256(payload).hexdigest(), title="Secret expert clip", description="only experts"
    )
    for user, named in ((world.outsider, False), (world.expert, True)):
        upload = {"file": SimpleUploadedFile("again.mp4", payload), "title": "again"}
        response = _client(user).post(reverse("moderation:api-video-list"), upload)
        assert response.status_code in (200, 201), (user, response.content)
        body = response.json()
        assert named or body == {"detail": "This file was already uploaded. Nothing new was queued."}, body
        assert ("Secret expert clip" in response.content.decode()) is named, user
        assert (body.get("id") == world.hidden.pk) is named, user
    assert Video.objects.count() == 3


def test_tag_suggestions_do_not_put_a_restricted_video_into_the_open_tags_queue(world: World) -> None:
    """Every video with suggestions got an item in the default tags queue, open to all: an item in an open queue
    makes a video visible, so content routed only to a restricted queue was shown to every moderator (its page,
    its media, the API) as soon as its tag suggestions were ranked."""
    from moderation.tagging.services import tag_queue_default, tag_task_create_for_video

    assert tag_task_create_for_video(video_id=world.hidden.pk) is None
    assert not video_open_to(user=world.outsider, video_id=world.hidden.pk)
    assert not ReviewTask.objects.filter(queue=tag_queue_default(), decision__video=world.hidden).exists()
    assert _client(world.outsider).get(reverse("moderation:video_detail", args=[world.hidden.pk])).status_code == 404
    # A video in an open queue still gets its tags item.
    assert tag_task_create_for_video(video_id=world.shared.pk) is not None
    assert tag_task_create_for_video(video_id=world.plain.pk) is not None


def test_the_label_studio_tag_export_leaves_out_videos_hidden_from_the_labeler(world: World) -> None:
    """The tag export (its live count and its tasks download) took every tagged video: a labeler outside the
    restricted queue's groups downloaded the hidden video's title, text and tags."""
    import json

    from moderation.tagging.models import Tag, TagSuggestion
    from moderation.tagging.services import tags_import, tags_review_submit

    tags_import(lines=["火锅"])
    hotpot = Tag.objects.get(name="火锅")
    Video.objects.filter(pk=world.hidden.pk).update(title="Secret expert clip")
    for video in (world.hidden, world.plain):
        TagSuggestion.objects.create(video=video, tag=hotpot, score=0.8, sources=["text"], features={})
        tags_review_submit(video_id=video.pk, user=world.admin, selected=[hotpot.pk], shown=[hotpot.pk])
    form = {"what": "tags", "tags-base_url": "http://wb.test", "tags-which": "reviewed"}
    for user, sees in ((world.outsider, False), (world.expert, True)):
        client = _client(user)
        response = client.get("/annotation/labelstudio/", {**form, "download": "tasks"})
        assert response.status_code == 200, response.content
        ids = {task["data"]["video_id"] for task in json.loads(response.content)}
        assert ids == {world.plain.pk} | ({world.hidden.pk} if sees else set()), user
        assert ("Secret expert clip" in response.content.decode()) is sees, user
        preview = client.get("/annotation/labelstudio/", form, HTTP_HX_REQUEST="true").content.decode()
        assert f"<strong>{2 if sees else 1}</strong> video" in preview, (user, preview)


def test_the_labeling_backlog_on_the_home_page_counts_only_what_the_labeler_may_open(world: World) -> None:
    """The home page's labeling counts took every correction and Tag2CoT task: a labeler outside the restricted
    queue's groups read "1 waiting for a second labeler" whose list (and page) they may not open."""
    from annotation.selectors import correction_candidates
    from tests.factories import CotCorrectionFactory

    CotCorrectionFactory(decision=world.task.decision, author=world.admin)
    panel = re.compile(r'(\?status=(?:none|submitted)(?:&amp;by=\w+)?|tag2cot/)">(\d+)</a>')
    for user, sees in ((world.outsider, False), (world.expert, True)):
        client = _client(user)
        counts = dict(panel.findall(client.get("/").content.decode()))
        assert counts["?status=submitted&amp;by=others"] == str(int(sees)), (user, counts)
        assert counts["?status=submitted&amp;by=me"] == "0", (user, counts)
        assert counts["tag2cot/"] == str(int(sees)), (user, counts)
        open_uncorrected = correction_candidates(status="none", user=user).count()
        assert counts["?status=none"] == str(open_uncorrected), (user, counts)


def test_a_video_bound_for_a_restricted_queue_is_hidden_before_that_queues_model_decides_it(
    policy_version: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A restricted queue that names its own model gets its item only once that model has decided the video
    (``run_queue_decision``, later, on the infer queue). Until then the video had no review item, so it was open to
    every moderator, and its tag suggestions put it into the open tags queue, which kept it open for good."""
    from moderation.inference.services import decision_create_for_video, model_version_register
    from moderation.review.services import review_queue_decision
    from moderation.tagging.services import tag_queue_default, tag_task_create_for_video

    seniors = Group.objects.create(name="seniors")
    own_model = model_version_register(name="seniors-model", backend="evidence_baseline")
    queue = ReviewQueue.objects.create(
        slug="seniors", name="Seniors", policy=policy_version.policy, model_version=own_model
    )
    queue.allowed_groups.add(seniors)
    outsider, senior, admin = _staff("moderator", "labeler"), _staff("moderator", "labeler", "seniors"), _staff("admin")
    video = VideoFactory(title="加微信 私聊")

    with django_capture_on_commit_callbacks():  # the queue's model is asked after the commit: not yet
        first = decision_create_for_video(video_id=video.pk)

    assert not ReviewTask.objects.filter(decision__video=video).exists()  # the window: no item anywhere
    assert not video_open_to(user=outsider, video_id=video.pk)
    assert _client(outsider).get(reverse("moderation:video_detail", args=[video.pk])).status_code == 404
    assert video_open_to(user=admin, video_id=video.pk)
    assert tag_task_create_for_video(video_id=video.pk) is None
    assert not ReviewTask.objects.filter(queue=tag_queue_default(), decision__video=video).exists()

    review_queue_decision(decision_id=first.pk, queue_id=queue.pk)

    assert ReviewTask.objects.filter(queue=queue, decision__video=video).exists()
    assert video_open_to(user=senior, video_id=video.pk)
    assert not video_open_to(user=outsider, video_id=video.pk)
    # A video routed to open queues only is still open to all.
    plain = VideoFactory(title="今天天气不错")
    queue.is_active = False
    queue.save()
    decision_create_for_video(video_id=plain.pk)
    assert video_open_to(user=outsider, video_id=plain.pk)


def test_the_policy_impact_preview_counts_a_restricted_flip_without_naming_it(
    world: World, policy_version: Any
) -> None:
    Video.objects.filter(pk=world.hidden.pk).update(title="Secret expert clip")
    for video in (world.hidden, world.plain):  # both flip once the draft adds "signal"
        SegmentFactory(video=video, text="ping me on signal for the real price")
    taxonomy = copy.deepcopy(policy_version.taxonomy)
    next(t for c in taxonomy for t in c["tags"] if t["key"] == "引导私下交易")["keywords"].append("signal")
    editor = _staff("policy_editor")
    draft = policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor)
    url = reverse("moderation:policy_version_impact", args=[draft.pk])
    assert _client(editor).post(url).status_code == 302  # run once (kept); each GET below shows it to its reader
    for user, sees in ((editor, False), (_staff("policy_editor", "experts"), True), (world.admin, True)):
        html = _client(user).get(url).content.decode()
        assert "<strong>2</strong> of 3 recent items" in html, user
        assert reverse("moderation:video_detail", args=[world.plain.pk]) in html, user
        assert (reverse("moderation:video_detail", args=[world.hidden.pk]) in html) is sees, user
        assert ("Secret expert clip" in html) is sees, user
        assert ("1 restricted video " in html) is not sees, user


def test_tag_curation_counts_a_restricted_sighting_without_naming_it(world: World) -> None:
    Video.objects.filter(pk=world.hidden.pk).update(title="Secret expert clip")
    proposal = TagProposal.objects.create(name="私聊", key="私聊", seen_count=2)
    TagProposalSighting.objects.create(proposal=proposal, video=world.hidden, phrase="secret phrase 私聊")
    TagProposalSighting.objects.create(proposal=proposal, video=world.plain, phrase="私聊")
    decide = reverse("moderation:tag_proposal_decide", args=[proposal.pk])
    refused = {"action": "merge", "target": ""}  # the row is redrawn with the reason, proposal still pending
    for user, sees in (
        (_staff("policy_editor"), False),
        (_staff("policy_editor", "experts"), True),
        (world.admin, True),
    ):
        client = _client(user)
        for html in (
            client.get(reverse("moderation:tag_curation")).content.decode(),
            client.post(decide, refused, HTTP_HX_REQUEST="true").content.decode(),
        ):
            assert re.search(rf"video {world.plain.pk}(</a>)?\s*<span", html), user
            assert bool(re.search(rf"video {world.hidden.pk}(</a>)?\s*<span", html)) is sees, user
            assert ("Secret expert clip" in html) is sees and ("secret phrase" in html) is sees, user
            assert ("1 video hidden from you " in html) is not sees, user


def test_tag_curation_does_not_name_a_proposal_seen_only_on_restricted_videos(world: World) -> None:
    """A proposal whose every sighting is on a hidden video was listed by name (the phrase a model wrote
    about that content), with "N restricted videos" beside it: now it is only counted, cannot be opened or
    decided (404), and a rejected one stays out of "Recently decided"."""
    secret = TagProposal.objects.create(name="机密词", key="机密词", seen_count=1)
    TagProposalSighting.objects.create(proposal=secret, video=world.hidden, phrase="机密词")
    rejected = TagProposal.objects.create(name="已拒密词", key="已拒密词", status=TagProposal.Status.REJECTED)
    TagProposalSighting.objects.create(proposal=rejected, video=world.hidden, phrase="已拒密词")
    TagProposal.objects.create(name="公开词", key="公开词")  # no sighting left: nothing to hide
    decide = reverse("moderation:tag_proposal_decide", args=[secret.pk])
    for user, sees in ((_staff("policy_editor"), False), (_staff("policy_editor", "experts"), True)):
        client = _client(user)
        html = client.get(reverse("moderation:tag_curation")).content.decode()
        assert "公开词" in html, user
        assert ("机密词" in html) is sees and ("已拒密词" in html) is sees, user
        assert ("1 more proposed tag seen only on videos hidden from you" in html) is not sees, user
        assert f"{2 if sees else 1} proposed tag" in html, user  # the restricted one is not counted as waiting
        answer = client.post(decide, {"action": "reject"}, HTTP_HX_REQUEST="true")
        assert answer.status_code == (200 if sees else 404), user
        secret.refresh_from_db()
        assert (secret.status == "rejected") is sees, user


def test_the_admin_keeps_restricted_videos_from_staff_who_may_not_see_them(world: World) -> None:
    """Staff given view permissions (not the admin role) list and open only videos open to them."""
    Video.objects.filter(pk=world.hidden.pk).update(title="Secret expert clip")
    views = Permission.objects.filter(codename__in=["view_video"])
    outsider = _staff("moderator", is_staff=True)
    expert = _staff("moderator", "experts", is_staff=True)
    superuser = _staff(is_staff=True, is_superuser=True)
    for user in (outsider, expert):
        user.user_permissions.add(*views)
    videos = reverse("admin:moderation_video_changelist")
    hidden = reverse("admin:moderation_video_change", args=[world.hidden.pk])
    for user, sees in ((outsider, False), (expert, True), (superuser, True)):
        client = _client(user)
        assert ("Secret expert clip" in client.get(videos).content.decode()) is sees, user
        assert client.get(hidden).status_code in ((200,) if sees else (302, 404)), user
    # A decision's change form offers only open videos as its video (the choices are titles).
    outsider.user_permissions.add(Permission.objects.get(codename="change_decision"))
    form = _client(outsider).get(reverse("admin:moderation_decision_change", args=[world.plain.decisions.get().pk]))
    assert form.status_code == 200 and "Secret expert clip" not in form.content.decode()


def test_admin_forms_choose_a_decision_or_item_by_search_among_open_ones(world: World) -> None:
    """A review item's or skip's form listed every decision / item in a <select> ("Decision object (123)"),
    hidden videos' included: unusable at 100k rows, and the names leaked. Now a search box (autocomplete)
    answered by the narrowed admin, a chosen row named by its ids, and a hidden row refused if posted."""
    staff = _staff(is_staff=True)
    codenames = ["change_reviewtask", "view_reviewtask", "view_decision", "change_reviewskip"]
    staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = _client(staff)
    open_task = ReviewTask.objects.filter(decision__video=world.shared).first()
    assert open_task is not None
    form = client.get(reverse("admin:moderation_reviewtask_change", args=[open_task.pk])).content.decode()
    assert 'class="admin-autocomplete' in form and "<option" in form
    assert form.count("decision ") < 5 and f"decision {open_task.decision_id} of video {world.shared.pk}" in form
    assert "object (" not in form
    search = reverse("admin:autocomplete")
    found = client.get(search, {"app_label": "moderation", "model_name": "reviewtask", "field_name": "decision"})
    ids = {int(row["id"]) for row in found.json()["results"]}
    assert open_task.decision_id in ids and world.task.decision_id not in ids
    by_id = client.get(
        search,
        {
            "app_label": "moderation",
            "model_name": "reviewtask",
            "field_name": "decision",
            "term": str(open_task.decision_id),
        },
    )
    assert [int(row["id"]) for row in by_id.json()["results"]] == [open_task.decision_id]
    hidden = client.get(
        search,
        {
            "app_label": "moderation",
            "model_name": "reviewtask",
            "field_name": "decision",
            "term": str(world.task.decision_id),
        },
    )
    assert hidden.json()["results"] == []
    posted = client.post(
        reverse("admin:moderation_reviewtask_change", args=[open_task.pk]),
        {
            "decision": world.task.decision_id,
            "queue": open_task.queue_id,
            "slot": 0,
            "priority": 0,
            "status": "pending",
        },
    )
    assert posted.status_code == 200 and "Select a valid choice" in posted.content.decode()
    assert ReviewTask.objects.get(pk=open_task.pk).decision_id == open_task.decision_id


def test_an_auditor_reads_the_events_not_about_videos_hidden_from_them(world: World) -> None:
    """The audit log was only for those who see every video (403 for an auditor with ``view_auditevent``):
    now each event about a hidden video's object (the video, a decision, a review or tags item, a pair, a
    Tag2CoT task, an adjudication) is left out of the list and its page is the admin's "does not exist"."""
    decision = world.task.decision
    hidden_objects = [
        world.hidden,
        decision,
        world.task,
        ReproCandidate.objects.get(original=world.hidden),
        Tag2CotTask.objects.get(video=world.hidden),
        Adjudication.objects.get(video=world.hidden),
    ]
    hidden_events = [
        audit_event_record(actor=None, action=f"secret.{i}", obj=obj, payload={"tags": ["secret tag"]})
        for i, obj in enumerate(hidden_objects)
    ]
    shown = audit_event_record(actor=None, action="tags.final", obj=world.plain, payload={"tags": ["open tag"]})
    shared = audit_event_record(actor=None, action="shared.final", obj=world.shared)
    policy = audit_event_record(actor=None, action="model_policy_reset", obj=decision.policy_version.policy)
    auditor = _staff(is_staff=True)
    expert = _staff("experts", is_staff=True)
    for user in (auditor, expert):
        user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    changelist = reverse("admin:moderation_auditevent_changelist")
    for user, sees in ((auditor, False), (expert, True), (_staff(is_staff=True, is_superuser=True), True)):
        client = _client(user)
        response = client.get(changelist)
        html = response.content.decode()
        assert response.status_code == 200, user
        assert all(e.action in html for e in (shown, shared, policy)), user
        assert [e.action in html for e in hidden_events] == [sees] * len(hidden_events), user
        for event in hidden_events:
            page = client.get(reverse("admin:moderation_auditevent_change", args=[event.pk]))
            if sees:
                assert page.status_code == 200 and "secret tag" in page.content.decode(), (user, event.action)
            else:
                assert page.status_code == 302 and page["Location"] == reverse("admin:index"), event.action
        assert client.get(reverse("admin:moderation_auditevent_change", args=[shown.pk])).status_code == 200


def test_events_of_deleted_objects_are_read_only_by_those_who_see_every_video(world: World) -> None:
    """A deleted video (and with it its decisions and pairs) can no longer be checked against the queues it
    was in: its events were shown to every auditor, so an outsider read what a hidden video had been.
    Now only those who see every video read them, marked "(deleted)" where a live object has its link."""
    gone = VideoFactory(title="Soon deleted")
    decision = DecisionFactory(video=gone, policy_version=world.task.decision.policy_version)
    gone_events = [
        audit_event_record(actor=None, action="gone.video", obj=gone, payload={"tags": ["gone tag"]}),
        audit_event_record(actor=None, action="gone.decision", obj=decision),
        audit_event_record(actor=None, action="gone.hidden", obj=world.hidden),
    ]
    audit_event_record(actor=None, action="live.video", obj=world.plain)
    policy = audit_event_record(actor=None, action="policy.edit", obj=decision.policy_version.policy)
    hidden_id = world.hidden.pk
    Video.objects.filter(pk__in=[gone.pk, hidden_id]).delete()

    auditor, expert = _staff(is_staff=True), _staff("experts", is_staff=True)
    admin_role = _staff("admin", is_staff=True)
    for user in (auditor, expert, admin_role):
        user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    superuser = _staff(is_staff=True, is_superuser=True)
    changelist = reverse("admin:moderation_auditevent_changelist")
    for user, sees in ((auditor, False), (expert, False), (admin_role, True), (superuser, True)):
        client = _client(user)
        html = client.get(changelist).content.decode()
        assert "live.video" in html and "policy.edit" in html, user
        assert [e.action in html for e in gone_events] == [sees] * 3, user
        for event in gone_events:
            page = client.get(reverse("admin:moderation_auditevent_change", args=[event.pk]))
            assert page.status_code == (200 if sees else 302), (user, event.action)
        if sees:
            assert f"video #{gone.pk} (deleted)" in html and f"video #{hidden_id} (deleted)" in html
            assert f"decision #{decision.pk} (deleted)" in html
            assert reverse("admin:moderation_video_change", args=[gone.pk]) not in html
            live_link = reverse("admin:moderation_video_change", args=[world.plain.pk])
            assert f'<a href="{live_link}">video #{world.plain.pk}</a>' in html
            assert f"policy #{policy.object_id}" in html  # a kind not checked: named, as before
    assert (
        "gone tag"
        in _client(superuser)
        .get(reverse("admin:moderation_auditevent_change", args=[gone_events[0].pk]))
        .content.decode()
    )


def test_the_pair_queue_counts_only_pairs_the_reviewer_can_work(world: World) -> None:
    for user, waiting in ((world.outsider, 0), (world.expert, 1), (world.admin, 1)):
        html = _client(user).get(reverse("moderation:repro_queue")).content.decode()
        assert f"{waiting} waiting · 0 claimed" in html, user


def test_migration_0040_drops_unworked_open_tags_items_of_restricted_videos(world: World) -> None:
    """Tags items made in an open tags queue before routing's restriction was known kept a restricted video open to
    every moderator: 0040's data step drops those not worked yet; worked ones, and those of videos also in an open
    queue, stay."""
    import importlib

    from django.apps import apps

    from moderation.tagging.services import tag_queue_default

    migration = importlib.import_module("moderation.migrations.0040_video_routed_restricted")
    tags = tag_queue_default()
    leak = TagTaskFactory(decision=world.task.decision)
    worked = TagTaskFactory(decision=world.task.decision, slot=1, status=ReviewTask.Status.DONE)
    shared_decision = ReviewTask.objects.filter(decision__video=world.shared).first().decision  # type: ignore[union-attr]
    shared = TagTaskFactory(decision=shared_decision)
    plain = TagTaskFactory(decision=world.plain.decisions.get())
    # It opens the video to no one any more (a tags item grants nothing), but it would be claimed by outsiders.
    assert not video_open_to(user=world.outsider, video_id=world.hidden.pk)

    migration.drop_open_tag_items_of_restricted_videos(apps, None)

    assert not ReviewTask.objects.filter(pk=leak.pk).exists()
    assert set(ReviewTask.objects.filter(queue=tags).values_list("pk", flat=True)) == {worked.pk, shared.pk, plain.pk}
    # The restricted queue's own tags item is no open queue's: it stays.
    assert ReviewTask.objects.filter(queue__slug="expert-tags", decision__video=world.hidden).exists()


def test_a_worked_tags_item_does_not_open_a_restricted_video(world: World) -> None:
    """A done or escalated item in the open tags queue (0040 kept worked ones; a video tagged before a later
    decision was routed to a restricted queue keeps its) made the video visible to every moderator: its page,
    the API, its media files and the audit log's events about it."""
    decision = world.task.decision
    done = TagTaskFactory(decision=decision, status=ReviewTask.Status.DONE)
    TagTaskFactory(decision=decision, slot=1, status=ReviewTask.Status.ESCALATED)
    event = audit_event_record(actor=None, action="secret.tagged", obj=world.hidden, payload={"tags": ["x"]})
    outsider = _client(world.outsider)
    assert not video_open_to(user=world.outsider, video_id=world.hidden.pk)
    for url in [*world.urls, reverse("moderation:tag_task", args=[done.pk])]:
        assert outsider.get(url).status_code == 404, url
    api = {row["id"] for row in outsider.get(reverse("moderation:api-video-list")).json()["results"]}
    assert world.hidden.pk not in api and world.plain.pk in api
    auditor = _staff(is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert event.action not in _client(auditor).get(reverse("admin:moderation_auditevent_changelist")).content.decode()
    # Its queue's groups and the admins still open it.
    for user in (world.expert, world.admin):
        assert _client(user).get(reverse("moderation:video_detail", args=[world.hidden.pk])).status_code == 200
    # A video also in an open moderation queue stays open to all.
    assert video_open_to(user=world.outsider, video_id=world.shared.pk)


def test_routing_a_tagged_video_to_a_restricted_queue_drops_its_unworked_open_tags_item(
    world: World, policy_version: Any
) -> None:
    """A video put into the open tags queue while open, then decided again and routed to a restricted queue: its
    waiting tags item would be handed to moderators who may no longer open it. It is dropped; a worked one stays
    (it holds who tagged it) and opens nothing."""
    from moderation.review.services import review_tasks_create_for_decision

    first = world.plain.decisions.get()
    waiting = TagTaskFactory(decision=first)
    worked = TagTaskFactory(decision=first, slot=1, status=ReviewTask.Status.DONE)
    assert video_open_to(user=world.outsider, video_id=world.plain.pk)

    again = DecisionFactory(
        video=world.plain, policy_version=policy_version, model_version=ModelVersionFactory(name="next-model")
    )
    review_tasks_create_for_decision(decision=again)  # the experts queue takes every decision

    assert not ReviewTask.objects.filter(pk=waiting.pk).exists()
    assert ReviewTask.objects.filter(pk=worked.pk).exists()
    assert not video_open_to(user=world.outsider, video_id=world.plain.pk)
    assert video_open_to(user=world.expert, video_id=world.plain.pk)


def test_a_video_not_routed_yet_is_open_only_to_its_uploader_and_admins(policy_version: Any) -> None:
    """From upload until its first decision, routing has not said whether a video is restricted: it was open to
    every moderator meanwhile (its page, media, the API and the list). Now its uploader follows it, those who see
    every video see it, and other moderators see it once it is decided and routed to a queue open to them."""
    from moderation.inference.services import decision_create_for_video

    uploader, colleague, admin = _staff("moderator"), _staff("moderator", "labeler"), _staff("admin")
    video = VideoFactory(created_by=uploader, title="Just uploaded clip")
    frame = default_storage.save("keyframes/unrouted.jpg", ContentFile(b"jpeg bytes"))
    Keyframe.objects.create(video=video, index=0, timestamp=0.5, image=frame)
    urls = [
        reverse("moderation:video_detail", args=[video.pk]),
        reverse("moderation:api-video-detail", args=[video.pk]),
        reverse("media", args=[video.file.name]),
        reverse("media", args=[frame]),
    ]
    event = audit_event_record(actor=uploader, action="video.uploaded", obj=video)
    auditor = _staff(is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))

    def sees(user: User) -> bool:
        client = _client(user)
        codes = {client.get(url).status_code for url in urls}
        assert len(codes) == 1, (user, codes)
        listed = "Just uploaded clip" in client.get(reverse("moderation:video_list")).content.decode()
        api = {row["id"] for row in client.get(reverse("moderation:api-video-list")).json()["results"]}
        assert listed is (video.pk in api) is (codes == {200}), (user, codes, listed)
        return codes == {200}

    assert sees(uploader) and sees(admin)
    assert not sees(colleague)
    assert event.action not in _client(auditor).get(reverse("admin:moderation_auditevent_changelist")).content.decode()

    decision_create_for_video(video_id=video.pk)  # routed to the open default queue

    assert ReviewTask.objects.filter(decision__video=video, queue__allowed_groups__isnull=True).exists()
    assert sees(colleague) and sees(uploader)
    assert event.action in _client(auditor).get(reverse("admin:moderation_auditevent_changelist")).content.decode()


def test_claim_next_in_the_tags_queue_passes_over_a_video_restricted_after_its_item_was_made(
    policy_version: Any,
) -> None:
    """A video's tags item was made while its moderation queue was open to all; an admin then restricted that
    queue to a group. "Claim next" in the tags queue (open to all) still handed the item to any moderator (and
    renewed their claim on it), whose tags screen answered 404. Now it goes only to those who may open it."""
    from moderation.review.services import review_claim_next
    from moderation.tagging.services import tag_queue_default, tag_task_create_for_video

    cases = ReviewQueue.objects.create(slug="cases", name="Cases")
    later_hidden = ReviewTaskFactory(decision__policy_version=policy_version, queue=cases).decision.video
    plain = ReviewTaskFactory(decision__policy_version=policy_version).decision.video  # the default queue
    hidden_item = tag_task_create_for_video(video_id=later_hidden.pk)
    plain_item = tag_task_create_for_video(video_id=plain.pk)
    ReviewTask.objects.filter(pk=hidden_item.pk).update(priority=10)  # served first, were it claimable
    later = Group.objects.create(name="experts-later")
    outsider, expert = _staff("moderator"), _staff("moderator", "experts-later")
    held = review_claim_next(user=outsider, queue=tag_queue_default())
    assert held is not None and held.pk == hidden_item.pk  # claimed while the video was still open to all

    cases.allowed_groups.add(later)

    assert not video_open_to(user=outsider, video_id=later_hidden.pk)
    # The queue's counts are what each may work: the outsider's claim on the hidden video is not theirs to count.
    stats = re.compile(r'<td data-stat="pending">(\d+)</td><td>(\d+)</td>')
    queue_url = reverse("moderation:tag_queue")
    assert stats.findall(_client(outsider).get(queue_url).content.decode()) == [("1", "0")]
    assert stats.findall(_client(expert).get(queue_url).content.decode()) == [("1", "1")]
    nxt = review_claim_next(user=outsider, queue=tag_queue_default())  # their own claim is not renewed
    assert nxt is not None and nxt.pk == plain_item.pk
    assert review_claim_next(user=outsider, queue=tag_queue_default(), exclude_ids=[nxt.pk]) is None
    client = _client(outsider)
    assert client.get(reverse("moderation:tag_task", args=[nxt.pk])).status_code == 200
    # Their "Claim next" on the tag queue hands the hidden one back and says why (it stayed theirs, unseen).
    from moderation.review.services import review_release

    review_release(task=nxt, user=outsider)
    pressed = client.post(reverse("moderation:tag_claim_next"), follow=True)
    assert [str(m) for m in pressed.context["messages"]][0] == (
        f"The item you held in “{tag_queue_default().name}” is no longer open to you: its video was routed to a "
        "restricted queue after you claimed it. It was handed back to that queue's reviewers."
    )
    hidden_item.refresh_from_db()
    assert hidden_item.status == ReviewTask.Status.PENDING and hidden_item.claimed_by_id is None
    ReviewTask.objects.filter(pk=held.pk).update(
        status=ReviewTask.Status.CLAIMED, claimed_by=outsider, claimed_at=timezone.now()
    )
    # Once the outsider's lease lapses, someone who may open the video takes it over.
    ReviewTask.objects.filter(pk=held.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = _client(expert).post(reverse("moderation:tag_claim_next"))
    assert taken["Location"].startswith(reverse("moderation:tag_task", args=[hidden_item.pk]))
    assert _client(expert).get(taken["Location"]).status_code == 200


def test_the_claim_statement_and_the_video_rule_agree(world: World) -> None:
    """The claim statement carries ``video_open_to_q`` compiled into its SQL: on the same fixtures, what each user
    can claim from each queue (tags and moderation, open and restricted) is exactly the open items whose video the
    rule opens to them, so the two cannot drift."""
    from django.db import transaction

    from moderation.media.selectors import video_open_to_q
    from moderation.review.services import ModerationError, review_claim_next

    for video in (world.hidden, world.shared, world.plain):  # a tags item for each, restricted or not
        TagTaskFactory(decision=video.decisions.first())
    ReviewTaskFactory(decision=world.plain.decisions.first())  # the default queue: open to all
    users = (world.outsider, world.expert, world.admin, _staff("moderator", "labeler", "experts-not"))
    for queue in ReviewQueue.objects.all():
        for user in users:
            rule = video_open_to_q(user=user, field="decision__video_id")
            waiting = ReviewTask.objects.filter(queue=queue, status__in=["pending", "claimed"], is_gold=False)
            expected = set(waiting.filter(rule).values_list("pk", flat=True))
            claimed: list[int] = []
            with transaction.atomic():
                try:
                    while (task := review_claim_next(user=user, queue=queue, exclude_ids=claimed)) is not None:
                        claimed.append(task.pk)
                except ModerationError:  # a restricted queue outside the user's groups: nothing claimable
                    expected = set()
                transaction.set_rollback(True)
            assert set(claimed) == expected, (queue.slug, user.username)


def test_a_moderator_following_a_link_to_an_upload_not_decided_yet_is_told_why_it_does_not_open(
    policy_version: Any,
) -> None:
    """A colleague's upload (a link in a ticket, a chat, the audit log's email) answered "No such video." while
    it waited for its decision: the moderator took the link for broken. The 404 now says which videos are hidden
    and when they open, in words that are the same for a missing video (the hidden one is not revealed)."""
    from moderation.inference.services import decision_create_for_video

    uploader, colleague = _staff("moderator"), _staff("moderator")
    video = VideoFactory(created_by=uploader, title="Waiting for its decision")
    client = _client(colleague)

    def page(pk: int) -> tuple[int, str]:
        response = client.get(reverse("moderation:video_detail", args=[pk]))
        main = re.search(r"<main>(.*)</main>", response.content.decode(), re.S)
        return response.status_code, main.group(1) if main else ""

    status, hidden = page(video.pk)
    assert status == 404 and "not open to you" in hidden and "not decided yet" in hidden, hidden
    assert "Waiting for its decision" not in hidden
    assert page(video.pk + 1000) == (404, hidden)  # a missing video reads the same
    # A script with the colleague's API token is told the same.
    api = [client.get(reverse("moderation:api-video-detail", args=[pk])) for pk in (video.pk, video.pk + 1000)]
    assert [a.status_code for a in api] == [404, 404] and api[0].json() == api[1].json()
    assert "not decided yet" in api[0].json()["detail"]
    assert "not open to you" not in _client(_staff("admin")).get(f"/videos/{video.pk + 1000}/").content.decode()

    decision_create_for_video(video_id=video.pk)  # decided, routed to the open default queue
    assert page(video.pk)[0] == 200


def test_keyframes_stored_before_their_rows_stay_with_a_video_not_decided_yet(policy_version: Any) -> None:
    """The pipeline stores a video's keyframes (``keyframes/<video id>/000001.jpg``) before the rows naming them
    commit, and a stage that dies in between leaves them behind. The media view served a file no row named to
    every media role: a colleague guessed the address of an upload not decided yet and saw its frames."""
    from moderation.inference.services import decision_create_for_video

    uploader, colleague = _staff("moderator"), _staff("moderator", "labeler")
    video = VideoFactory(created_by=uploader, file="", status=Video.Status.PROCESSING)
    orphan = default_storage.save(f"keyframes/{video.pk}/000001.jpg", ContentFile(b"jpeg bytes"))
    url = reverse("media", args=[orphan])
    staging = default_storage.save(f"keyframes/.v{video.pk}-abc/000001.jpg", ContentFile(b"jpeg bytes"))

    assert _client(colleague).get(url).status_code == 404
    assert _client(uploader).get(url).status_code == 200
    assert _client(colleague).get(reverse("media", args=[staging])).status_code == 404

    Video.objects.filter(pk=video.pk).update(status=Video.Status.READY)
    decision_create_for_video(video_id=video.pk)  # decided, routed to the open default queue
    assert _client(colleague).get(url).status_code == 200


@dataclass
class TwoPolicies:
    minors: Any  # the second auto-applied policy's active version (decided after "kuaimod": slugs in order)
    queue: ReviewQueue  # restricted to "minors-experts"; takes every decision under that policy
    outsider: User
    expert: User
    admin: User
    uploader: User


@pytest.fixture
def two_policies(policy_version: Any) -> TwoPolicies:
    from moderation.inference.services import model_version_register
    from moderation.policies.models import Policy
    from tests.factories import PolicyVersionFactory

    serving = model_version_register(name="minors-model", backend="evidence_baseline", base_model="minors-vlm")
    policy = Policy.objects.create(slug="minors", name="Minors", auto_apply=True, serving_model=serving)
    experts = Group.objects.create(name="minors-experts")
    queue = ReviewQueue.objects.create(slug="minors", name="Minors", policy=policy)
    queue.allowed_groups.add(experts)
    return TwoPolicies(
        minors=PolicyVersionFactory(policy=policy),
        queue=queue,
        outsider=_staff("moderator", "labeler"),
        expert=_staff("moderator", "labeler", "minors-experts"),
        admin=_staff("admin"),
        uploader=_staff("moderator"),
    )


def test_a_video_is_not_open_to_all_between_two_policies_decisions(
    two_policies: TwoPolicies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each auto-applied policy's decision was saved and routed in its own transaction, and a video with one
    decision counted as routed: from the first policy's decision ("kuaimod", routed to the open default queue)
    until the second's routed it to a group-restricted queue, every moderator could open it (and claim its
    default-queue item). Now a run's decisions and their routing commit together, and the default queue one
    policy fell back to does not undo the other policy's restriction."""
    from moderation.inference import services
    from moderation.inference.services import decisions_create_for_video
    from moderation.review.services import review_claim_next, review_queue_default

    w = two_policies
    video = VideoFactory(created_by=w.uploader, title="playground clip")
    page = reverse("moderation:video_detail", args=[video.pk])
    between: list[tuple[bool, int, bool]] = []
    real_get_backend = services.get_backend

    def get_backend(name: str, **kwargs: Any) -> Any:
        if kwargs.get("base_model") == "minors-vlm":  # the second policy's model: the first one has decided
            between.append(
                (
                    video_open_to(user=w.outsider, video_id=video.pk),
                    _client(w.outsider).get(page).status_code,
                    video_open_to(user=w.uploader, video_id=video.pk),
                )
            )
        return real_get_backend(name, **kwargs)

    monkeypatch.setattr(services, "get_backend", get_backend)

    decisions = decisions_create_for_video(video_id=video.pk)

    assert between == [(False, 404, True)]  # the uploader still follows it; other moderators do not see it
    assert {d.policy_version.policy.slug for d in decisions} == {"kuaimod", "minors"}
    assert ReviewTask.objects.filter(decision__video=video, queue=review_queue_default()).exists()
    assert ReviewTask.objects.filter(decision__video=video, queue=w.queue).exists()
    for user, sees in ((w.outsider, False), (w.uploader, False), (w.expert, True), (w.admin, True)):
        assert video_open_to(user=user, video_id=video.pk) is sees, user
        assert _client(user).get(page).status_code == (200 if sees else 404), user
    # The claim statement agrees: the default queue's item goes to the experts, not to the outsider.
    assert review_claim_next(user=w.outsider, queue=review_queue_default()) is None
    claimed = review_claim_next(user=w.expert, queue=review_queue_default())
    assert claimed is not None and claimed.decision.video_id == video.pk
    # A redelivered task runs no model again.
    monkeypatch.setattr(services, "get_backend", lambda *a, **k: pytest.fail("a second inference"))
    assert decisions_create_for_video(video_id=video.pk) == decisions


def test_one_policy_sharing_its_restricted_video_with_an_open_queue_still_opens_it(two_policies: TwoPolicies) -> None:
    """Within one policy an open queue still opens the video (its routing chose to share it, as before); only
    another policy's open queue does not."""
    from moderation.inference.services import decisions_create_for_video

    w = two_policies
    shared = ReviewQueue.objects.create(slug="minors-open", name="Minors, open", policy=w.queue.policy)
    video = VideoFactory(title="shared clip")
    decisions_create_for_video(video_id=video.pk)
    assert ReviewTask.objects.filter(decision__video=video, queue=shared).exists()
    assert video_open_to(user=w.outsider, video_id=video.pk)


def test_another_policys_open_queue_does_not_open_a_video_whose_restricted_queue_waits_for_its_model(
    two_policies: TwoPolicies, django_capture_on_commit_callbacks: Any
) -> None:
    """The restricted queue names its own model, so its item is made once that model has decided (later, on the
    infer queue): meanwhile ``Video.routed_restricted`` closed the video unless some item was open to the reader,
    and the first policy's item in the open default queue was: every moderator could open it until that model
    decided. Now only those who see every video do, until the item says whose it is."""
    from moderation.inference.services import decisions_create_for_video
    from moderation.review.services import review_queue_decision

    w = two_policies
    own = ModelVersionFactory(name="minors-reviewer", backend="evidence_baseline")
    ReviewQueue.objects.filter(pk=w.queue.pk).update(model_version=own)
    video = VideoFactory(title="waits for the queue's model")
    with django_capture_on_commit_callbacks():  # the queue's model is asked after the commit: not yet
        decisions = decisions_create_for_video(video_id=video.pk)
    assert not ReviewTask.objects.filter(queue=w.queue).exists()
    assert ReviewTask.objects.filter(decision__video=video).count() == 1  # the default queue's, kuaimod's
    for user, sees in ((w.outsider, False), (w.expert, False), (w.admin, True)):
        assert video_open_to(user=user, video_id=video.pk) is sees, user

    minors = next(d for d in decisions if d.policy_version == w.minors)
    review_queue_decision(decision_id=minors.pk, queue_id=w.queue.pk)

    assert ReviewTask.objects.filter(queue=w.queue, decision__video=video).exists()
    for user, sees in ((w.outsider, False), (w.expert, True), (w.admin, True)):
        assert video_open_to(user=user, video_id=video.pk) is sees, user


def test_a_video_decided_before_a_second_policy_applied_stays_open_until_that_policy_decides_it(
    two_policies: TwoPolicies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video decided under one policy before another was made auto-applied is not hidden again by that change
    alone; a later run (a retry) decides it under the new policy, routes it there, and only then restricts it. A
    run whose second model fails saves nothing (the video stays undecided, its uploader's), and its retry decides
    under both."""
    from moderation.inference import services
    from moderation.inference.services import decisions_create_for_video
    from moderation.inference.tasks import run_inference
    from moderation.policies.models import Policy

    w = two_policies
    Policy.objects.filter(pk=w.queue.policy_id).update(auto_apply=False)
    earlier = VideoFactory(title="decided before")
    decisions_create_for_video(video_id=earlier.pk)
    Policy.objects.filter(pk=w.queue.policy_id).update(auto_apply=True)
    assert video_open_to(user=w.outsider, video_id=earlier.pk)
    decisions_create_for_video(video_id=earlier.pk)
    assert not video_open_to(user=w.outsider, video_id=earlier.pk)
    assert video_open_to(user=w.expert, video_id=earlier.pk)

    real_get_backend = services.get_backend

    def failing(name: str, **kwargs: Any) -> Any:
        if kwargs.get("base_model") == "minors-vlm":
            raise RuntimeError("CUDA out of memory")
        return real_get_backend(name, **kwargs)

    video = VideoFactory(created_by=w.uploader, title="second model fails")
    monkeypatch.setattr(services, "get_backend", failing)
    assert run_inference.run(video.pk) is None
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and "CUDA out of memory" in video.error
    assert not video.decisions.exists()
    assert video_open_to(user=w.uploader, video_id=video.pk)
    assert not video_open_to(user=w.outsider, video_id=video.pk)
    monkeypatch.setattr(services, "get_backend", real_get_backend)
    assert len(decisions_create_for_video(video_id=video.pk)) == 2
    assert video_open_to(user=w.expert, video_id=video.pk)
    assert not video_open_to(user=w.outsider, video_id=video.pk)


def test_an_uploader_whose_video_went_to_a_restricted_queue_is_told_without_being_shown_it(
    two_policies: TwoPolicies,
) -> None:
    """An uploader outside a restricted queue's groups lost sight of their own upload once routing sent it there:
    it vanished from their video list, and its page and the API answered the 404 everyone reads. Now their list
    keeps a row by number and upload time saying where it went, the 404 and a second upload of the same bytes
    tell them the same; nobody sees more of it than before (title, media and page stay the queue's groups')."""
    from moderation.inference.services import decisions_create_for_video

    w = two_policies
    payload = b"\x00\x00\x00\x18ftypmp42" + b"u" * 4096
    video = VideoFactory(
        created_by=w.uploader, uploader=w.uploader.username, title="Secret school clip", description="kids"
    )
    Video.objects.filter(pk=video.pk).update(sha256=hashlib.sha256(payload).hexdigest())
    decisions_create_for_video(video_id=video.pk)
    page = reverse("moderation:video_detail", args=[video.pk])
    told = f"Your upload #{video.pk} was sent to a restricted review queue"

    def list_row(user: User) -> str:
        html = _client(user).get(reverse("moderation:video_list")).content.decode()
        row = re.search(rf'<tr id="video-{video.pk}"[^>]*>(.*?)</tr>', html, re.S)
        return row.group(0) if row else ""

    row = list_row(w.uploader)
    assert f"Your upload #{video.pk}" in row and "restricted review queue" in row and "no longer open to you" in row
    assert "Secret school clip" not in row and page not in row and "row-restricted" in row
    assert list_row(w.outsider) == ""
    assert "Secret school clip" in list_row(w.expert) and page in list_row(w.expert)

    uploader = _client(w.uploader)
    response = uploader.get(page)
    text = response.content.decode()
    assert response.status_code == 404 and told in text and "Secret school clip" not in text
    api = uploader.get(reverse("moderation:api-video-detail", args=[video.pk]))
    assert api.status_code == 404 and told in api.json()["detail"]
    assert uploader.get(reverse("media", args=[video.file.name])).status_code == 404
    # Anyone else reads the words a missing video gets.
    outsider = _client(w.outsider)

    def main(url: str) -> str:
        found = re.search(r"<main>(.*)</main>", outsider.get(url).content.decode(), re.S)
        return found.group(1) if found else ""

    assert told not in main(page) and "not open to you" in main(page)
    assert main(page) == main(reverse("moderation:video_detail", args=[video.pk + 1000]))

    for user, named in ((w.uploader, True), (w.outsider, False)):
        form = {"file": SimpleUploadedFile("again.mp4", payload), "title": "again"}
        text = _client(user).post(reverse("moderation:video_upload"), form, follow=True).content.decode()
        assert "already uploaded" in text or "uploaded this file before" in text, user
        assert (f"You uploaded this file before (#{video.pk})" in text) is named, user
        form = {"file": SimpleUploadedFile("again.mp4", payload), "title": "again"}
        body = _client(user).post(reverse("moderation:api-video-list"), form).json()
        assert set(body) == {"detail"} and (f"#{video.pk}" in body["detail"]) is named, (user, body)
    assert Video.objects.filter(created_by=w.uploader).count() == 1


def test_an_item_held_whose_video_was_hidden_since_is_said_and_handed_back_by_claim_next(policy_version: Any) -> None:
    """A moderator held an item when another policy routed its video to a restricted queue they are not in: the
    claim passed over it, the queue list showed neither "Continue" nor anything to claim ("empty", "Nothing is
    waiting"), "Claim next" said "Queue is empty.", the item's address was a bare 404, and the claim stayed
    theirs, unseen, until its lease lapsed, kept from the queue's experts. Now the list says why and offers
    "Claim next", which hands it back (audited) with the reason; its address says the same."""
    from moderation.policies.models import Policy
    from moderation.review.services import review_claim_next, review_queue_default
    from tests.factories import PolicyVersionFactory

    experts = Group.objects.create(name="minors-experts-2")
    outsider, expert = _staff("moderator"), _staff("moderator", "minors-experts-2")
    item = ReviewTaskFactory(decision__policy_version=policy_version)
    held = review_claim_next(user=outsider, queue=review_queue_default())
    assert held is not None and held.pk == item.pk
    minors = Policy.objects.create(slug="minors-2", name="Minors")
    restricted = ReviewQueue.objects.create(slug="minors-2", name="Minors", policy=minors)
    restricted.allowed_groups.add(experts)
    video = item.decision.video
    ReviewTaskFactory(
        decision=DecisionFactory(video=video, policy_version=PolicyVersionFactory(policy=minors)), queue=restricted
    )
    assert not video_open_to(user=outsider, video_id=video.pk)
    client = _client(outsider)
    reason = (
        "The item you held in “Default” is no longer open to you: its video was routed to a restricted queue after "
        "you claimed it."
    )

    screen = client.get(reverse("moderation:review_task", args=[held.pk]))
    assert screen.status_code == 404 and reason in screen.content.decode()
    page = client.get(reverse("moderation:queue")).content.decode()
    row = re.search(r'<tr data-queue="default".*?</tr>', page, re.S)
    assert row is not None and "row-empty" not in row.group(0) and "disabled" not in row.group(0)
    said_here = reason.replace("held in “Default”", "held here")
    assert (
        f'<tr class="held-row" data-held-hidden-in="default"><td colspan="8"><p class="hint" data-held-hidden>{said_here}'
        in page
    )

    response = client.post(reverse("moderation:queue_claim_next", args=["default"]), follow=True)

    assert response.redirect_chain == [(reverse("moderation:queue"), 302)]
    said = [str(m) for m in response.context["messages"]]
    assert said == [f"{reason} It was handed back to that queue's reviewers.", "Queue is empty."]
    item.refresh_from_db()
    assert item.status == ReviewTask.Status.PENDING and item.claimed_by_id is None
    assert AuditEvent.objects.filter(
        action="release", object_id=str(item.pk), actor=outsider, payload__no_longer_open=True
    ).exists()
    assert "data-held-hidden" not in response.content.decode()
    # Those who may open it take it now, not once the outsider's lease has lapsed.
    assert review_claim_next(user=expert, queue=review_queue_default()).pk == item.pk
