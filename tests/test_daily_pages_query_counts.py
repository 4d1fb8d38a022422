"""The pages people open all day run a fixed number of SQL statements, however much there is to show: the policy
page's History (up to 50 audit events), the publish step's kept impact preview (its flipped videos' visibility read
in one statement), the operations page's CSP reports, the agreement page's gold accuracy, the training API's lists,
and the header's roles (read with the permissions, not in a statement of their own on every page).

Each count is pinned exactly: one statement more is a regression to explain (or a new read to count here)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation.models import CotCorrection
from moderation.inference.impact import policy_impact_preview
from moderation.inference.models import Decision, ImpactPreviewRun, KeptVerdict
from moderation.inference.services import model_version_register
from moderation.media.models import Video
from moderation.ops.selectors import ops_dashboard
from moderation.policies.models import PolicyVersion
from moderation.review.models import AuditEvent, AwaitedQueueItem, ReviewQueue, ReviewTask
from moderation.review.services import review_claim_next
from tests.factories import (
    CotCorrectionFactory,
    DecisionFactory,
    PolicyVersionFactory,
    ReviewFactory,
    ReviewTaskFactory,
    TagEventFactory,
    TagFactory,
    TagSuggestionFactory,
    TagTaskFactory,
    UserFactory,
    VideoFactory,
)
from tests.moderation.policies.test_impact_preview import _decided, _draft_with_keyword
from training.models import EvaluationRun, PreferenceDataset, ShadowDecision, TrainingJob
from workbench.models import CspViolation

pytestmark = pytest.mark.django_db


def _captured(client: Client, url: str) -> list[str]:
    client.get(url)  # warm the session (its first read may write)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return [q["sql"] for q in ctx.captured_queries]


def _statements(client: Client, url: str) -> int:
    return len(_captured(client, url))


# Every signed-in page: the session, the user, the user's own permissions, and their groups with the groups'
# permissions (the header's roles from the same statement).
SIGNED_IN = 4


def test_the_header_reads_the_roles_with_the_permissions_not_in_a_statement_of_its_own(client_as):
    admin = client_as("admin")
    for url in (
        reverse("moderation:review_agreement"),  # a page whose view checks a permission itself
        reverse("moderation:ops_dashboard"),  # a page behind permission_required
    ):
        sql = _captured(admin, url)
        # Statements that read the user's groups themselves (not a queue's rule that joins them in a subquery).
        group_reads = [s for s in sql if s.split(" FROM ")[1].split()[0] in ('"auth_group"', '"auth_permission"')]
        group_reads = [s for s in group_reads if '"auth_user_groups"' in s]
        # Before: one for the groups' permissions (the permission check), one for the names (the header).
        assert len(group_reads) == 1, group_reads
        assert '"auth_group"."name"' in group_reads[0] and '"auth_permission"."codename"' in group_reads[0]
    page = admin.get(reverse("moderation:review_agreement")).content.decode()
    assert 'class="who-name"' in page


def test_a_user_without_the_permission_is_still_refused_and_told_their_roles(client_as):
    labeler = client_as("labeler")
    response = labeler.get(reverse("moderation:ops_dashboard"))
    assert response.status_code == 403
    assert "you are signed in as" in response.content.decode() and "(labeler)" in response.content.decode()


def test_policy_page_with_its_history_in_a_fixed_number_of_statements(policy_version, client_as):
    admin = client_as("admin")
    url = reverse("moderation:policy_detail", args=[policy_version.policy_id])
    few = _statements(admin, url)
    for n in range(60):  # more than the History shows (50)
        AuditEvent.objects.create(
            action="policy.draft_save",
            object_type="policyversion",
            object_id=str(policy_version.pk),
            actor_name=f"editor{n}",
            payload={"number": 2, "fields": ["notes"], "changes": ["a note"], "change_count": 3},
        )
    page = admin.get(url).content.decode()
    assert page.count('class="history-draft_save"') == 50
    many = _statements(admin, url)
    assert many == few == SIGNED_IN + 5, (few, many)  # policy, versions, 2 model versions, the History


def test_publish_step_draws_the_kept_preview_in_a_fixed_number_of_statements(policy_version, make_user, client_as):
    _decided(policy_version, "ping me on signal")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    policy_impact_preview(draft=draft, user=make_user("admin"))
    editor = client_as("admin")
    step = reverse("moderation:policy_version", args=[draft.pk]) + "?confirm=publish"
    few = _statements(editor, step)

    run = ImpactPreviewRun.objects.get()
    flip = run.result["flips"][0]
    flipped = [VideoFactory(title=f"Flipped {n}") for n in range(100)]
    run.result["flips"] = [dict(flip, video_id=v.pk) for v in flipped]
    run.save(update_fields=["result"])
    Video.objects.filter(pk=flipped[0].pk).delete()  # gone since the run: counted, not named
    page = editor.get(step).content.decode()
    assert "Flipped 99" in page and "Flipped 0<" not in page
    many = _statements(editor, step)
    # The version (with its policy), the active version once (not again for the staleness check and the preview),
    # its published base, the taxonomy rows' version, the kept run, the flipped videos with who may see them (one
    # statement, was two) and "decided since".
    assert many == few == SIGNED_IN + 6, (few, many)


def test_operations_page_with_many_csp_reports_in_a_fixed_number_of_statements(client_as):
    admin = client_as("admin")
    url = reverse("moderation:ops_dashboard")
    few = _statements(admin, url)
    today = timezone.now().date()
    CspViolation.objects.bulk_create(
        CspViolation(day=today, directive="script-src", blocked=f"https://ext{n}.example/x.js", document_path="/")
        for n in range(200)
    )
    page = admin.get(url).content.decode()
    assert page.count('data-csp-directive="script-src"') == 20  # the latest 20, not all 200
    many = _statements(admin, url)
    # The failed videos, the repro failures (counts, latest), routing health (stranded; the auto-applied policies;
    # the half-decided; the orphans' three kinds; the awaited and kept rows, one UNION), the time series (decisions
    # and reviews per hour, the SLA and the cascade per day: one UNION, four statements before), the last 14 days'
    # reviews (one read for the reviewers' and the model-vs-human panels, two before), the backlog (open work, the
    # queues), the CSP reports. The failed tries' list reads no auto-applied policies again when it is empty. Since
    # hops21 the routing checks read the videos listed as changed (``RoutingRecheck``): none here, so one read
    # replaces the auto-applied policies, the half-decided set and the orphans' unrouted and other-policy kinds.
    assert many == few == SIGNED_IN + 12, (few, many)


def _home_panel(page: str, panel: str) -> str:
    return page.split(f'id="home-{panel}"', 1)[1].split("</section>", 1)[0]


def test_home_page_in_a_fixed_number_of_statements(policy_version, make_user):
    """An admin's home shows every panel: the review queues and today's work, the labeling backlog, the policy drafts
    and publishes, the media pipeline, the training jobs, the integrations. Every panel's single-row counts are one
    statement together (``workbench.db.aggregate_rows_read``: today's reviews, the corrections, the open Tag2CoT
    tasks, the tag proposals, the videos, the training jobs, the integrations, endpoints and deliveries: nine
    statements before); the latest drafts and publishes one UNION (two before). Today's reviews and their times stay
    two reads: one would read every item the reviewer decided today (6.7k in bench/daily_pages.py: 26 → 53 ms), the
    two read at most 2,000."""
    user = make_user("admin")
    admin = Client()
    admin.force_login(user)
    url = reverse("home")
    ReviewTaskFactory(decision__policy_version=policy_version)  # an item to claim (else the pipeline is counted)
    few = _statements(admin, url)

    other = make_user("labeler")
    for _ in range(12):  # more than the panel lists of each (8 drafts, 5 published)
        PolicyVersionFactory(
            policy=policy_version.policy, status=PolicyVersion.Status.DRAFT, is_active=False, created_by=user
        )
        PolicyVersionFactory(policy=policy_version.policy, is_active=False)
    for status, author in ((CotCorrection.Status.DRAFT, user), (CotCorrection.Status.DRAFT, other)) * 2:
        CotCorrectionFactory(status=status, author=author, decision__policy_version=policy_version)
    for author in (user, other, other, other):
        CotCorrectionFactory(author=author, decision__policy_version=policy_version)  # submitted
    for _ in range(5):
        DecisionFactory(policy_version=policy_version)  # not corrected
    dataset = PreferenceDataset.objects.create(name="pairs")
    for status in (
        [TrainingJob.Status.RUNNING] * 3 + [TrainingJob.Status.FAILED] * 4 + [TrainingJob.Status.SUCCEEDED] * 2
    ):
        TrainingJob.objects.create(dataset=dataset, status=status, history=[{"step": 1, "loss": 0.5}] * 500)
    now = timezone.now()
    for n in range(6):
        task = ReviewTaskFactory(
            decision__policy_version=policy_version,
            status="done",
            claimed_at=now - timedelta(seconds=10 * (n + 1)),
            completed_at=now,
        )
        ReviewFactory(task=task, reviewer=user)
    page = admin.get(url).content.decode()
    many = _statements(admin, url)
    # Every panel's counts (one statement); the review panel: the queues, which hold an item to claim, the oldest
    # waiting item per queue, today's reviews' seconds, the items held; the policies: the latest drafts and
    # publishes; the pipeline: the serving models; training: the latest jobs. 17 before the counts were one read.
    # Plus the queue list's probe of the claimable queues for one that would hand this reviewer nothing (their own
    # uploads, four eyes: walk 21's home offered "Claim next" there), one bounded prepared statement.
    assert many == few == SIGNED_IN + 10, (few, many)
    counted = [s for s in _captured(admin, url) if " CROSS JOIN " in s]
    assert len(counted) == 1 and all(
        t in counted[0] for t in ('"moderation_webhookdelivery"', '"training_trainingjob"')
    )

    labeling = _home_panel(page, "labeling")
    uncorrected = Decision.objects.filter(correction__isnull=True).exclude(cot=[]).count()
    assert f'?status=none">{uncorrected}</a>' in labeling and uncorrected >= 5
    assert 'by=me">2</a>' in labeling  # the admin's own drafts, not the labeler's
    assert 'by=others">3</a>' in labeling  # submitted by someone else: the admin's own is not theirs to review
    assert "3 queued or running" in page and "4 failed" in page
    # Today's reviews and the median time an item took: 10 to 60 s, the upper median 40 s.
    assert "<strong>Today:</strong> 6 decided · 6 overrides · median 40 s per item" in page
    policies = _home_panel(page, "policies")
    drafts, published = policies.split("Recently published", 1)
    numbers = [v.number for v in PolicyVersion.objects.order_by("-created_at")]
    drafts_shown = [int(n) for n in re.findall(r" v(\d+)</a> by ", drafts)]
    assert len(drafts_shown) == 8 and drafts_shown == sorted(drafts_shown, reverse=True)
    assert f"by {user.username}," in drafts
    published_shown = [int(n) for n in re.findall(r" v(\d+)</a>", published)]
    assert len(published_shown) == 5 and published_shown == [n for n in numbers if n not in drafts_shown][:5]


def test_operations_page_reads_the_awaited_and_kept_rows_and_its_series_in_one_statement_each(
    policy_version, client_as
):
    admin = client_as("admin")
    url = reverse("moderation:ops_dashboard")
    page = admin.get(url).content.decode()
    assert "No item awaits a queue's own model." in page and "No model answer is kept for a retry" in page

    hours_ago = timezone.now() - timedelta(hours=5)
    decisions = [DecisionFactory(policy_version=policy_version, cascade_stage=1) for _ in range(3)]
    Decision.objects.filter(pk=decisions[0].pk).update(cascade_escalated=True)
    for decision in decisions[:2]:
        KeptVerdict.objects.create(
            video=decision.video, policy_version=policy_version, fingerprint="f", answer={"label": "正向"}
        )
    KeptVerdict.objects.filter(video=decisions[0].video).update(created_at=hours_ago)
    AwaitedQueueItem.objects.create(decision=decisions[2], queue=ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG))
    sql = _captured(admin, url)
    page = admin.get(url).content.decode()
    assert "1 item awaits the model of the queue that reviews it (oldest 0.0 h)." in page
    assert "2 model answers kept for the retry of a run another policy's model failed (oldest 5.0 h)" in page
    assert "<strong>3</strong> model decisions" in page
    ops = ops_dashboard()
    assert ops["cascade"]["rate_total"] == pytest.approx(1 / 3)
    unions = [s for s in sql if " UNION ALL " in s]
    assert len(unions) == 2, unions  # the routing's awaited and kept rows; the four time series
    assert sum('"moderation_keptverdict"' in s or '"moderation_awaitedqueueitem"' in s for s in sql if "MIN(" in s) == 1


def test_agreement_page_gold_accuracy_in_a_fixed_number_of_statements(policy_version, client_as):
    admin = client_as("admin")
    url = reverse("moderation:review_agreement")
    few = _statements(admin, url)
    for n in range(30):  # 30 reviewers, each with a gold answer
        ReviewFactory(task=ReviewTaskFactory(decision__policy_version=policy_version), gold_correct=n % 2 == 0)
    many = _statements(admin, url)
    assert many == few == SIGNED_IN + 3, (few, many)  # the queues seen, agreement, gold accuracy


@pytest.mark.parametrize("url", ["/api/training/jobs/", "/api/training/evaluations/"])
def test_training_api_lists_in_a_fixed_number_of_statements(url, policy_version, client_as):
    admin = client_as("admin")
    dataset = PreferenceDataset.objects.create(name="pairs")
    model = model_version_register(name="candidate", backend="evidence_baseline")
    TrainingJob.objects.create(dataset=dataset)
    EvaluationRun.objects.create(model_version=model, policy_version=policy_version, eval_set="gold")
    few = _statements(admin, url)
    for _ in range(100):
        TrainingJob.objects.create(dataset=dataset)
        EvaluationRun.objects.create(model_version=model, policy_version=policy_version, eval_set="gold")
    assert len(admin.get(url).json()["results"]) == 50
    many = _statements(admin, url)
    # The session, the user, the two permission reads (no page header here), the count and the page of rows.
    assert many == few == 6, (few, many)


def test_training_job_list_reads_no_loss_history_or_log(client_as):
    """A long run logs thousands of steps: the lists (API and training screen) showed none of them but read all."""
    admin = client_as("admin")
    dataset = PreferenceDataset.objects.create(name="pairs")
    TrainingJob.objects.create(dataset=dataset, history=[{"step": s, "loss": 0.5} for s in range(2000)], log_tail="x")
    for url in ("/api/training/jobs/", reverse("training:job_list")):
        rows = [s for s in _captured(admin, url) if 'FROM "training_trainingjob"' in s and "COUNT(" not in s]
        assert rows and all('"training_trainingjob"."history"' not in s for s in rows), rows
        assert all('"training_trainingjob"."log_tail"' not in s for s in rows), rows


def _more_of_everything(k: int, *, policy_version, user, senior: ReviewQueue, tag_video: Video) -> None:  # type: ignore[no-untyped-def]
    """``k`` more of each kind of row the daily screens list or count: queues of two reviews an item, each with an
    item the user holds, one waiting and two items reviewed twice (the agreement page); escalations into ``senior``
    with their reasons and the earlier reviews of its item; suggestions and answers on ``tag_video``; training
    datasets, jobs, registered models with an evaluation, shadowed decisions."""
    decision = senior.tasks.get().decision
    for i in range(k):
        queue = ReviewQueue.objects.create(name=f"Queue {k}-{i}", slug=f"queue-{k}-{i}", required_reviews=2)
        ReviewTaskFactory(decision__policy_version=policy_version, queue=queue)
        ReviewTaskFactory(decision__policy_version=policy_version, queue=queue)
        review_claim_next(user=user, queue=queue)
        for _ in range(2):
            reviewed = DecisionFactory(policy_version=policy_version)
            for slot in range(2):
                task = ReviewTaskFactory(decision=reviewed, queue=queue, slot=slot, status=ReviewTask.Status.DONE)
                ReviewFactory(task=task, reviewer=UserFactory(role="moderator"), gold_correct=slot == 0)
        source = ReviewQueue.objects.create(name=f"Source {k}-{i}", slug=f"source-{k}-{i}", escalation_queue=senior)
        escalated = ReviewTaskFactory(decision=decision, queue=source, status=ReviewTask.Status.ESCALATED)
        AuditEvent.objects.create(
            action="escalate", object_type="reviewtask", object_id=str(escalated.pk), payload={"reason": f"why {i}"}
        )
        earlier = ReviewTaskFactory(decision=decision, queue=source, slot=1, status=ReviewTask.Status.DONE)
        ReviewFactory(task=earlier, reviewer=UserFactory(role="moderator"))
        TagSuggestionFactory(video=tag_video, tag=TagFactory(name=f"tag {k}-{i}"))
        TagEventFactory(video=tag_video, reviewer=UserFactory(role="moderator"))
        dataset = PreferenceDataset.objects.create(name=f"pairs {k}-{i}")
        model = model_version_register(name=f"candidate {k}-{i}", backend="evidence_baseline")
        TrainingJob.objects.create(dataset=dataset, status=TrainingJob.Status.SUCCEEDED, model_version=model)
        EvaluationRun.objects.create(
            model_version=model,
            policy_version=policy_version,
            eval_set="gold",
            eval_set_key="gold:a",
            status=EvaluationRun.Status.SUCCEEDED,
            metrics={"binary_accuracy": 0.5 + i / 100},
            finished_at=timezone.now(),
        )
        ShadowDecision.objects.create(
            decision=DecisionFactory(policy_version=policy_version),
            model_version=model,
            error="timed out" * (1 - i % 2),
        )


def test_the_daily_screens_run_as_many_statements_with_ten_times_the_rows(policy_version, make_user):
    """The queue list, the agreement page, the cascade dashboard, the tags queue and a tag item's screen, the training
    jobs and models screens, and a senior queue's review screen (its earlier reviews and escalations shown): each
    runs the same statements with one row of each kind as with eleven. The models screen read six or so statements
    a registered version (its gate and shadow figures, version by version)."""
    user = make_user("admin")
    client = Client()
    client.force_login(user)
    senior = ReviewQueue.objects.create(name="Senior", slug="senior", routes_new_decisions=False)
    held = ReviewTaskFactory(decision__policy_version=policy_version, queue=senior)
    review_claim_next(user=user, queue=senior)
    tag_task = TagTaskFactory(decision__policy_version=policy_version, suggestions=[("美食", 0.9), ("火锅", 0.7)])
    assert client.post(reverse("moderation:tag_claim_next")).status_code == 302
    tag_task.refresh_from_db()
    assert tag_task.claimed_by == user
    world = {"policy_version": policy_version, "user": user, "senior": senior, "tag_video": tag_task.decision.video}
    urls = {
        "queue list": reverse("moderation:queue"),
        "agreement": reverse("moderation:review_agreement"),
        "cascade": reverse("moderation:cascade"),
        "tags queue": reverse("moderation:tag_queue"),
        "tag item": reverse("moderation:tag_task", args=[tag_task.pk]),
        "training jobs": reverse("training:job_list"),
        "models": reverse("training:model_list"),
        "senior review screen": reverse("moderation:review_task", args=[held.pk]),
    }
    _more_of_everything(1, **world)
    few = {name: _statements(client, url) for name, url in urls.items()}
    _more_of_everything(10, **world)
    many = {name: _statements(client, url) for name, url in urls.items()}
    assert many == few, {name: (few[name], many[name]) for name in urls if few[name] != many[name]}
    page = client.get(urls["senior review screen"]).content.decode()
    assert page.count("why ") >= 11  # every escalation's reason is on the screen, read in the same statements
