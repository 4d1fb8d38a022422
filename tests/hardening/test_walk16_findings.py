"""What the sixteenth role walk through the running app found that the server draws (the browser half is in
tests/browser/test_walk16_browser.py)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import escape

from moderation.integrations.services import integration_create
from moderation.reproduction.services import pair_claim_next, pair_review_submit
from tests.factories import TagTaskFactory
from tests.moderation.reproduction.test_pair_review import make_pair


def test_an_admin_finds_the_audit_log_from_the_operations_screens(client_as, make_user, client) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: the policy screen says gate refusals "are in the audit log", and nothing in the app led
    there (it is the Django admin's audit-event list, reached only by typing its address)."""
    audit = reverse("admin:moderation_auditevent_changelist")
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    ops = client.get(reverse("moderation:ops_dashboard")).content.decode()
    assert f'href="{audit}" id="ops-audit-log">the audit log</a>' in ops
    assert f'<a href="{audit}">Audit log</a>' in client.get(reverse("home")).content.decode()
    assert client.get(audit).status_code == 200
    # An admin-role user the Django admin would refuse is not sent there.
    assert audit not in client_as("admin").get(reverse("moderation:ops_dashboard")).content.decode()


def test_the_reviewed_pairs_give_the_queue_score_as_the_waiting_pairs_do(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked as a moderator: pair #1 waited with "Queue score 0.555" and, decided, was listed with "Score 0.55"."""
    admin = make_user("admin")
    pair = make_pair(0.555)
    assert pair_claim_next(user=admin) == pair
    pair_review_submit(candidate=pair, user=admin, verdict="unrelated")
    page = client_as("moderator").get(reverse("moderation:repro_reviewed")).content.decode()
    assert "<th>Queue score</th>" in page and "<td>0.555</td>" in page and "0.55<" not in page


def test_a_refused_webhook_endpoint_puts_the_cursor_back_in_its_url_with_the_reason(client_as, settings) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: "Endpoint not added: Webhooks may not be sent to localhost …" and the focus on the page's
    top, the URL to fix a screen below with nothing tying it to the reason."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # as served (the tests' receivers are local)
    integration, _ = integration_create(name="clips-platform")
    refused = client_as("admin").post(
        reverse("moderation:webhook_endpoint_add", args=[integration.pk]),
        {"url": "http://localhost:9/hook", "event_types": ["decision.created"]},
    )
    assert refused.status_code == 400
    page = refused.content.decode()
    url_input = page[page.index('<input name="url"') :]
    url_input = url_input[: url_input.index(">")]
    assert "autofocus" in url_input and f'aria-describedby="endpoint-error-{integration.pk}"' in url_input
    assert f'id="endpoint-error-{integration.pk}">Endpoint not added: ' in page


def test_the_tag_screen_leads_back_to_the_tag_queue(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as a tag reviewer: the review screen has "Back to queue"; the tag screen had no way back but the top
    bar."""
    task = TagTaskFactory(decision__policy_version=policy_version)
    page = client_as("moderator").get(reverse("moderation:tag_task", args=[task.pk])).content.decode()
    assert f'<a href="{reverse("moderation:tag_queue")}" id="tag-back-to-queue">Back to the tag queue</a>' in page


def test_an_evaluation_without_items_of_a_kind_says_so_instead_of_a_measured_zero(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: the SFT job's model, evaluated on a gold set of one violation, read "Non-violation recall
    0.000", as if it had missed every harmless video; there was none in the set (the benchmark's rule stores 0 for a
    division by no item)."""
    from moderation.inference.backends import BackendResult
    from moderation.inference.services import model_version_register
    from training.evaluation import evaluation_scores
    from training.models import EvaluationRun

    result = BackendResult(label="", is_violation=False, confidence=0.0, cot=[], parse_error="no <answer>")
    scores = evaluation_scores(["引导私下交易"], [result], policy_version.spec())
    assert scores.metrics["nonviolative_recall"] == 0.0  # stored as the benchmark computes it
    run = EvaluationRun.objects.create(
        model_version=model_version_register(name="sft-job-1", backend="evidence_baseline"),
        policy_version=policy_version,
        eval_set_key=f"gold:policy_version={policy_version.pk}",
        status=EvaluationRun.Status.SUCCEEDED,
        n_items=1,
        metrics=scores.metrics,
        confusion=scores.confusion,
    )
    page = client_as("admin").get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()

    def shown(key: str) -> str:
        row = page[page.index(f'title="{key}"') :]
        return row[: row.index("</tr>")].rsplit("<td>", 1)[1].removesuffix("</td>")

    assert shown("nonviolative_recall") == "— (no non-violative item in the set; the benchmark counts it 0.000)"
    assert shown("violative_recall") == "0.000"  # a measured zero stays one: the one violation was missed


def test_queueing_tag2cot_tasks_when_none_is_due_does_not_point_at_tasks_that_were_never_made(
    client_as, policy_version
) -> None:  # type: ignore[no-untyped-def]
    """Walked as a labeler on the fresh demo: "Queue new Tag2CoT tasks" said every such item "already has a task
    (listed under Open or Done)", and Open, Done and All were empty."""
    from tests.factories import DecisionFactory

    DecisionFactory(policy_version=policy_version, label="正向")  # decided, no human label differs
    page = client_as("labeler").post(reverse("annotation:tag2cot_queue"), follow=True).content.decode()
    assert escape("No Tag2CoT tasks to queue: on every human-labelled item the model's reasoning reaches") in page
    assert "already has a task" not in page


def test_a_correction_submitted_and_accepted_is_in_the_audit_log(client_as, make_user, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: the audit log listed the moderator's claims, reviews and tags and the editor's publish,
    but not the labeler's submitted correction nor who accepted it, which is what put it into the SFT/DPO data."""
    from annotation.models import CotCorrection
    from annotation.services import cot_correction_accept, cot_correction_save
    from moderation.review.models import AuditEvent
    from tests.factories import DecisionFactory

    decision = DecisionFactory(policy_version=policy_version, label="正向")
    author, second = make_user("labeler"), make_user("labeler")
    stages = {"final_judgment": "Violation: 引导私下交易."}
    cot_correction_save(
        decision=decision, author=author, stages=stages, label="引导私下交易", base_revision=0, submit=False
    )
    assert not AuditEvent.objects.filter(action__startswith="correction.").exists()  # a draft is the author's own
    correction = cot_correction_save(
        decision=decision, author=author, stages=stages, label="引导私下交易", base_revision=1
    )
    cot_correction_accept(correction=correction, by=second, base_revision=correction.revision)
    events = list(
        AuditEvent.objects.filter(action__startswith="correction.")
        .order_by("pk")
        .values_list("action", "actor_name", "object_id", "payload")
    )
    payload = {"decision": decision.pk, "revision": 2, "label": "引导私下交易"}
    assert events == [
        ("correction.submit", author.username, str(correction.pk), payload),
        ("correction.accept", second.username, str(correction.pk), payload),
    ]
    assert CotCorrection.objects.get().status == CotCorrection.Status.ACCEPTED
