"""User feedback that contradicts the model opens one adjudication; its outcome labels the item."""

from __future__ import annotations

import itertools

import pytest
from django.urls import reverse

from annotation.models import Adjudication, DisagreementRule
from annotation.services import adjudication_decide, disagreements_evaluate
from moderation.feedback.services import feedback_events_ingest
from moderation.integrations.services import integration_create
from moderation.labels.models import ItemLabel
from moderation.review.models import AuditEvent
from tests.factories import DecisionFactory, VideoFactory

pytestmark = pytest.mark.django_db
_ids = itertools.count()
T = "2026-05-01T12:00:00Z"


@pytest.fixture
def rules():  # type: ignore[no-untyped-def]
    DisagreementRule.objects.all().delete()
    return {
        "reported_pass": DisagreementRule.objects.create(name="r", kind="reported_pass", threshold=0.1, min_events=10),
        "appeal_overturned": DisagreementRule.objects.create(name="a", kind="appeal_overturned", min_events=1),
        "positive_engagement": DisagreementRule.objects.create(
            name="p", kind="positive_engagement", threshold=0.5, min_events=10
        ),
    }


@pytest.fixture
def integration():  # type: ignore[no-untyped-def]
    return integration_create(name="platform")[0]


def _events(integration, video, **counts):  # type: ignore[no-untyped-def]
    rows, n = [], 0
    for kind, count in counts.items():
        for _ in range(count):
            n += 1
            row = {"event_id": f"ev-{next(_ids)}", "type": kind, "video_id": video.pk, "timestamp": T}
            if kind == "watch_time":
                row["seconds"] = 3
            if kind == "appeal":
                row.update(outcome="overturned", appeal_id=f"ap-{n}")
            rows.append(row)
    result = feedback_events_ingest(integration=integration, events=rows)
    assert not result.errors
    return result


def test_reported_pass_fires_once_and_only_over_the_thresholds(rules, integration, policy_version):
    video = VideoFactory()
    DecisionFactory(video=video, policy_version=policy_version, label="正向", is_violation=False)
    _events(integration, video, watch_time=9, report=5)  # rate high but under 10 views
    assert disagreements_evaluate(video_ids=[video.pk]) == []
    _events(integration, video, watch_time=11)  # 20 views, 5 reports: 25%
    [opened] = disagreements_evaluate(video_ids=[video.pk])
    assert opened.kind == "reported_pass" and "25.0%" in opened.reason and opened.feedback["reports"] == 5
    assert disagreements_evaluate(video_ids=[video.pk]) == []  # idempotent
    assert disagreements_evaluate() == []  # the periodic sweep too
    assert Adjudication.objects.count() == 1


def test_flagged_with_overturned_appeal_and_with_positive_engagement(rules, integration, policy_version):
    appealed, liked, quiet = VideoFactory(), VideoFactory(), VideoFactory()
    for v in (appealed, liked, quiet):
        DecisionFactory(video=v, policy_version=policy_version, label="引导私下交易", is_violation=True)
    _events(integration, appealed, appeal=1)
    _events(integration, liked, watch_time=10, like=6)
    _events(integration, quiet, watch_time=10, like=2, report=5)  # reports do not contradict a flag
    opened = disagreements_evaluate()
    assert sorted((a.video_id, a.kind) for a in opened) == sorted(
        [(appealed.pk, "appeal_overturned"), (liked.pk, "positive_engagement")]
    )
    assert disagreements_evaluate() == []
    rules["positive_engagement"].is_active = False
    rules["positive_engagement"].save()
    Adjudication.objects.filter(kind="positive_engagement").delete()
    assert disagreements_evaluate() == []  # a disabled rule does not fire


def test_ingest_queues_the_check_that_opens_the_adjudication(rules, integration, policy_version, celery_worker):
    import time

    video = VideoFactory()
    DecisionFactory(video=video, policy_version=policy_version, label="引导私下交易", is_violation=True)
    _events(integration, video, appeal=1)
    deadline = time.monotonic() + 20
    while not Adjudication.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Adjudication.objects.get().kind == "appeal_overturned"


def test_adjudication_outcome_labels_the_item_and_is_audited(rules, integration, policy_version, client_as):
    video = VideoFactory()
    decision = DecisionFactory(video=video, policy_version=policy_version, label="引导私下交易", is_violation=True)
    _events(integration, video, appeal=1)
    [adjudication] = disagreements_evaluate()
    client = client_as("moderator")
    url = reverse("annotation:adjudication_detail", args=[adjudication.pk])
    html = client.get(url).content.decode()
    assert "appeal" in html and 'id="user-feedback"' in html
    assert client.post(url, {"label": "nope"}).status_code == 400
    assert client.post(url, {"label": "正向", "note": "harmless"}).status_code == 302
    label = ItemLabel.objects.get(video=video, source=ItemLabel.Source.ADJUDICATION)
    assert label.label == "正向" and label.policy_version == policy_version
    event = AuditEvent.objects.get(action="adjudication.decide")
    assert event.payload["label"] == "正向" and event.payload["model_label"] == decision.label
    adjudication.refresh_from_db()
    assert adjudication.status == "decided" and adjudication.outcome_label == "正向"
    from annotation.errors import AnnotationError

    with pytest.raises(AnnotationError, match="Already decided"):
        adjudication_decide(adjudication=adjudication, by=adjudication.decided_by, label="正向")
    assert client_as("labeler").get(url).status_code == 403
    assert "No open adjudications" in client.get(reverse("annotation:adjudication_list")).content.decode()


def test_deciding_an_adjudication_says_which_label_the_video_now_has(rules, integration, policy_version, client_as):
    """Walked: "Adjudication #1 decided; the video's label is recorded." on a list that no longer shows it — which
    label, for which video, was not said. And the reason read "1 appeal(s)"."""
    video = VideoFactory(title="Cheap phones, DM me")
    DecisionFactory(video=video, policy_version=policy_version, label="引导私下交易", is_violation=True)
    _events(integration, video, appeal=1)
    [adjudication] = disagreements_evaluate()
    assert "but 1 appeal against the moderation succeeded" in adjudication.reason
    client = client_as("moderator")
    url = reverse("annotation:adjudication_detail", args=[adjudication.pk])
    page = client.post(url, {"label": "正向"}, follow=True).content.decode()
    name = policy_version.label_names()["正向"]
    assert f"Adjudication #{adjudication.pk} decided: {name} (正向) is now the label of “Cheap phones, DM me”." in (
        page.replace("&#x27;", "'")
    )


def test_the_adjudication_page_shows_the_review_and_the_label_it_would_replace(
    rules, integration, policy_version, client_as, make_user
):
    """Walked on the demo data: a moderator had overridden the model (色情低俗) before an appeal opened the
    adjudication, and its page showed only the model's verdict: the adjudicator chose a label blind to the
    review and to the label standing, which their outcome replaces."""
    from moderation.review.services import review_claim_next, review_submit
    from tests.factories import ReviewTaskFactory

    video = VideoFactory()
    decision = DecisionFactory(video=video, policy_version=policy_version, label="引导私下交易", is_violation=True)
    ReviewTaskFactory(decision=decision)
    reviewer = make_user("moderator", username="first-reviewer")
    task = review_claim_next(user=reviewer)
    assert task is not None
    review_submit(task=task, user=reviewer, verdict="override", label="色情低俗", severity="medium")
    _events(integration, video, appeal=1)
    [adjudication] = disagreements_evaluate()

    html = client_as("moderator").get(reverse("annotation:adjudication_detail", args=[adjudication.pk]))

    page = html.content.decode()
    panel = page.split('id="video-outcome"', 1)[1].split("</section>", 1)[0]
    assert "The video's label now" in panel
    # The reviewer's label and severity beside their verdict: what the adjudicator weighs.
    assert (
        "Override label · <strong data-review-label>Sexually explicit &amp; vulgar</strong> <small>(色情低俗)</small>"
        in (panel)
    )
    assert "<span data-review-severity>severity medium</span> · by first-reviewer" in panel
    final = panel.split('data-outcome="final"', 1)[1]
    assert "色情低俗" in final and "Human review" in final


def test_an_unknown_adjudication_status_is_said_and_every_adjudication_listed(policy_version, client_as):
    """``?status=banana`` was echoed as a filter: "No banana adjudications." under an "Open" tab, every
    adjudication hidden. Now it is said (400) and all of them are listed under an "All" tab."""
    open_one = DecisionFactory(policy_version=policy_version)
    decided_one = DecisionFactory(policy_version=policy_version)
    for decision, status in ((open_one, "open"), (decided_one, "decided")):
        Adjudication.objects.create(
            video=decision.video, decision=decision, kind="reported_pass", reason="r", status=status
        )
    client = client_as("moderator")
    url = reverse("annotation:adjudication_list")

    response = client.get(url, {"status": "banana<b>"})

    html = response.content.decode()
    assert response.status_code == 400
    assert "There is no adjudication status “banana&lt;b&gt;”: showing every adjudication." in html
    assert 'role="alert"' in html and "banana adjudications" not in html and "<b>" not in html
    assert open_one.video.title in html and decided_one.video.title in html
    assert '<strong aria-current="page">All</strong>' in html and 'href="?status=open"' in html
    # The known filters stay as they were, with no message.
    opened = client.get(url)
    assert opened.status_code == 200 and "no adjudication status" not in opened.content.decode()
    assert open_one.video.title in opened.content.decode() and decided_one.video.title not in opened.content.decode()
    decided = client.get(url, {"status": "decided"}).content.decode()
    assert decided_one.video.title in decided and open_one.video.title not in decided
    everything = client.get(url, {"status": "all"})
    assert everything.status_code == 200 and decided_one.video.title in everything.content.decode()
