"""Re-running a model's decision whose user-feedback stage went stale (feedback arrived after it decided):
the request (who may ask, refusals, once only, queued on the infer queue after the commit), the run (the
task's body against a vLLM OpenAI-compatible server on loopback: the prompt sees the new feedback; a model
that cannot run here fails with the reason) and the review screen's CoT panel (state, then the re-run's
reasoning in place of the stale one, stale again with newer feedback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.feedback.models import FeedbackAggregate
from moderation.inference.models import DecisionRerun, ModelVersion
from moderation.inference.services import decision_rerun_request
from moderation.inference.tasks import rerun_decision
from moderation.review.services import review_claim_next
from tests.broker import broker_client
from tests.vllm_stub import vllm_stub

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
STAGES = ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")


def _cot(feedback_text: str) -> list[dict]:
    texts = {"user_feedback": feedback_text, "final_judgment": "Non-violative."}
    return [{"key": k, "title": k, "text": texts.get(k, f"{k} text"), "evidence": []} for k in STAGES]


@pytest.fixture
def vlm_server() -> Iterator[tuple[str, list[dict], list[str]]]:
    """A stand-in for `vllm serve` on loopback: records each request, answers the queued replies."""
    with vllm_stub(prompt_tokens=700, completion_tokens=80) as stub:
        yield stub.url, stub.bodies, stub.answers


@pytest.fixture
def stale(make_task, make_user):  # type: ignore[no-untyped-def]
    """A vLLM decision claimed by a moderator; 14 reports and an appeal arrived after it decided."""
    version, _ = ModelVersion.objects.get_or_create(
        name="qwen-vl-test", defaults={"backend": ModelVersion.Backend.VLLM, "base_model": "qwen-vl"}
    )
    task = make_task(
        decision__model_version=version,
        decision__backend=ModelVersion.Backend.VLLM,
        decision__cot=_cot("No user-feedback events yet."),
    )
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator) == task
    FeedbackAggregate.objects.create(
        video=task.decision.video,
        views=100,
        reports=14,
        appeals=1,
        appeals_pending=1,
        last_event_at=timezone.now() + timedelta(seconds=1),
    )
    client = Client()
    client.force_login(moderator)
    return task, moderator, client


def _answer(feedback: str, label: str = "正向") -> str:
    return json.dumps(
        {
            "content_extraction": "A phone seller.",
            "analysis": "Talks about phones.",
            "intermediate_check": "Consistent.",
            "user_feedback": feedback,
            "label": label,
            "confidence": 0.8,
        },
        ensure_ascii=False,
    )


def test_a_stale_stage_offers_a_rerun_which_is_queued_once_on_the_infer_queue_after_the_commit(
    stale, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    task, moderator, client = stale
    screen = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert "this stage does not know it" in screen and "data-rerun" in screen

    broker, queue = broker_client(), "infer"
    before = broker.llen(queue)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        resp = client.post(reverse("moderation:review_rerun", args=[task.pk]), **HTMX)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "re-run queued" in html and 'hx-trigger="every 2s"' in html and "data-rerun" not in html
    rerun = DecisionRerun.objects.get()
    assert (rerun.decision, rerun.requested_by, rerun.status) == (task.decision, moderator, "queued")
    assert len(sent) == 1 and broker.llen(queue) == before + 1
    message = json.loads(broker.lindex(queue, 0))
    assert message["headers"]["task"] == "moderation.inference.tasks.rerun_decision"
    assert message["headers"]["argsrepr"] == f"[{rerun.pk}]"
    broker.lpop(queue)

    # A second click (another tab): the same re-run, nothing queued twice.
    with django_capture_on_commit_callbacks(execute=False) as again:
        client.post(reverse("moderation:review_rerun", args=[task.pk]), **HTMX)
    assert again == [] and DecisionRerun.objects.count() == 1


def test_the_rerun_reads_the_new_feedback_and_its_reasoning_replaces_the_stale_stage(stale, vlm_server, settings):  # type: ignore[no-untyped-def]
    task, moderator, client = stale
    url, seen, answers = vlm_server
    settings.VLLM_SERVER_URL = url
    rerun = decision_rerun_request(decision_id=task.decision_id, by=moderator)
    poll = reverse("moderation:review_cot", args=[task.pk]) + "?part=rerun"
    assert "re-run queued" in client.get(poll, **HTMX).content.decode()

    answers.append(_answer("14 reports and a pending appeal: viewers object to it.", label="引导私下交易"))
    assert rerun_decision(rerun.pk) == "done"
    prompt = seen[0]["messages"][1]["content"][-1]["text"]
    assert "reports=14" in prompt and "appeals_pending=1" in prompt
    assert rerun_decision(rerun.pk) == "done" and len(seen) == 1  # a redelivery runs nothing twice

    resp = client.get(poll, **HTMX)  # finished: the whole panel, swapped over the stale one
    assert (resp["HX-Retarget"], resp["HX-Reswap"]) == ("#cot", "outerHTML")
    panel = resp.content.decode()
    assert "14 reports and a pending appeal" in panel and "It differs from the decision" in panel
    assert "stale-badge" not in panel and "data-rerun" not in panel
    assert "No user-feedback events yet." in panel  # the decision's own reasoning, kept below
    screen = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert "14 reports and a pending appeal" in screen and "this stage does not know it" not in screen
    with pytest.raises(ModerationError, match="nothing new"):
        decision_rerun_request(decision_id=task.decision_id, by=moderator)

    # Feedback newer than the re-run: stale again, and it may be re-run again.
    FeedbackAggregate.objects.filter(video=task.decision.video).update(
        reports=30, last_event_at=timezone.now() + timedelta(minutes=1)
    )
    screen = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert "after the model re-ran" in screen and "Re-run again with the new feedback" in screen


def test_a_model_that_cannot_run_on_the_worker_fails_with_the_reason_and_may_be_asked_again(stale, settings):  # type: ignore[no-untyped-def]
    task, moderator, client = stale
    settings.VLLM_SERVER_URL = ""  # the offline engine: vllm is not installed on this CPU machine
    rerun = decision_rerun_request(decision_id=task.decision_id, by=moderator)

    assert rerun_decision(rerun.pk) == "failed"
    rerun.refresh_from_db()
    assert "cannot run on this inference worker" in rerun.error and "vllm" in rerun.error
    assert rerun.finished_at is not None

    resp = client.get(reverse("moderation:review_cot", args=[task.pk]) + "?part=rerun", **HTMX)
    panel = resp.content.decode()
    assert resp.status_code == 200 and "re-run failed" in panel and "cannot run on this inference worker" in panel
    assert "Re-run again with the new feedback" in panel and "stale-badge" in panel
    assert decision_rerun_request(decision_id=task.decision_id, by=moderator).pk != rerun.pk


def test_a_rerun_queued_too_long_is_sent_again_a_recent_one_is_not(stale, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    task, moderator, _client = stale
    rerun = decision_rerun_request(decision_id=task.decision_id, by=moderator)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert decision_rerun_request(decision_id=task.decision_id, by=moderator) == rerun
    assert sent == []
    DecisionRerun.objects.filter(pk=rerun.pk).update(sent_at=timezone.now() - DecisionRerun.RESEND_AFTER)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert decision_rerun_request(decision_id=task.decision_id, by=moderator) == rerun
    assert [cb.args[0] for cb in sent] == ["moderation.inference.tasks.rerun_decision"]


def _stall(rerun: DecisionRerun, *, by: timedelta = timedelta(seconds=1)) -> None:
    """The worker died mid-run: "running" since past the stall bound, its message long sent."""
    then = timezone.now() - DecisionRerun.STALLED_AFTER - by
    DecisionRerun.objects.filter(pk=rerun.pk).update(status="running", started_at=then, sent_at=then)


def test_the_stall_bound_is_past_the_tasks_hard_time_limit():
    assert rerun_decision.soft_time_limit < rerun_decision.time_limit
    assert DecisionRerun.STALLED_AFTER.total_seconds() > rerun_decision.time_limit
    assert DecisionRerun.STALLED_AFTER.total_seconds() < settings.CELERY_VISIBILITY_TIMEOUT


def test_a_running_rerun_without_progress_past_the_bound_is_stalled_polled_slowly_and_may_be_sent_again(
    stale, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    task, moderator, client = stale
    poll = reverse("moderation:review_cot", args=[task.pk]) + "?part=rerun"
    rerun = decision_rerun_request(decision_id=task.decision_id, by=moderator)
    # Running, within the bound: the usual state, polled every 2 s, nothing to send again.
    recent = timezone.now() - DecisionRerun.STALLED_AFTER + timedelta(minutes=1)
    DecisionRerun.objects.filter(pk=rerun.pk).update(status="running", started_at=recent, sent_at=recent)
    panel = client.get(poll, **HTMX).content.decode()
    assert "re-run running" in panel and 'hx-trigger="every 2s"' in panel
    assert "re-run stalled" not in panel and "Send it again" not in panel
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert decision_rerun_request(decision_id=task.decision_id, by=moderator) == rerun
    assert sent == []

    _stall(rerun)
    panel = client.get(poll, **HTMX).content.decode()
    assert "re-run stalled" in panel and "re-run running" not in panel and "Send it again" in panel
    assert 'hx-trigger="every 30s"' in panel and 'hx-trigger="every 2s"' not in panel

    broker, queue = broker_client(), "infer"
    before = broker.llen(queue)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        resp = client.post(reverse("moderation:review_rerun", args=[task.pk]), **HTMX)
    assert resp.status_code == 200 and len(sent) == 1 and broker.llen(queue) == before + 1
    message = json.loads(broker.lindex(queue, 0))
    assert message["headers"]["argsrepr"] == f"[{rerun.pk}]"
    broker.lpop(queue)
    # Sent again: the same row (no second re-run), no longer stalled, polled every 2 s again.
    assert DecisionRerun.objects.count() == 1
    rerun.refresh_from_db()
    assert rerun.status == "running" and rerun.sent_at > timezone.now() - timedelta(minutes=1)
    html = resp.content.decode()
    assert "re-run running" in html and 'hx-trigger="every 2s"' in html and "Send it again" not in html
    with django_capture_on_commit_callbacks(execute=False) as sent:  # a second click sends nothing more
        client.post(reverse("moderation:review_rerun", args=[task.pk]), **HTMX)
    assert sent == []


def test_of_a_stalled_run_and_its_resend_only_the_first_to_finish_writes(stale, vlm_server, settings, monkeypatch):  # type: ignore[no-untyped-def]
    """The stalled delivery was only slow: the resend runs and finishes while it still waits on the model,
    then the original returns its own answer, which is dropped."""
    from moderation.inference import services

    task, moderator, client = stale
    url, seen, answers = vlm_server
    settings.VLLM_SERVER_URL = url
    rerun = decision_rerun_request(decision_id=task.decision_id, by=moderator)
    answers.extend([_answer("the resend's answer", label="正向"), _answer("the slow original's", label="引导私下交易")])
    real_get_backend = services.get_backend
    resend_result: list[str | None] = []

    class SlowOriginal:
        """The original delivery's backend: while it waits, the run stalls and the resend runs through."""

        def __init__(self, backend) -> None:  # type: ignore[no-untyped-def]
            self.backend = backend

        def decide_batch(self, contents, spec):  # type: ignore[no-untyped-def]
            monkeypatch.setattr(services, "get_backend", real_get_backend)  # the resend uses the real one
            _stall(rerun)
            assert decision_rerun_request(decision_id=task.decision_id, by=moderator) == rerun  # "Send it again"
            resend_result.append(rerun_decision(rerun.pk))
            # Only now does the original's own model call return (the second queued answer).
            return self.backend.decide_batch(contents, spec)

    monkeypatch.setattr(services, "get_backend", lambda *a, **k: SlowOriginal(real_get_backend(*a, **k)))
    assert rerun_decision(rerun.pk) == "done"
    assert resend_result == ["done"] and len(seen) == 2
    rerun.refresh_from_db()
    assert rerun.status == "done" and rerun.label == "正向"
    assert "the resend's answer" in json.dumps(rerun.cot, ensure_ascii=False)
    assert "the slow original's" not in json.dumps(rerun.cot, ensure_ascii=False)
    assert DecisionRerun.objects.count() == 1
    assert rerun_decision(rerun.pk) == "done" and len(seen) == 2  # a later redelivery runs nothing


def test_refusals_are_messages_not_errors(make_task, make_user):  # type: ignore[no-untyped-def]
    baseline = make_task()  # the evidence baseline: its stage 4 is re-derived on the screen instead
    moderator = make_user("moderator")
    review_claim_next(user=moderator)
    client = Client()
    client.force_login(moderator)
    FeedbackAggregate.objects.create(video=baseline.decision.video, reports=3, last_event_at=timezone.now())

    resp = client.post(reverse("moderation:review_rerun", args=[baseline.pk]), **HTMX)
    assert resp.status_code == 200 and "is not re-run" in resp.content.decode()
    follow = client.post(reverse("moderation:review_rerun", args=[baseline.pk]), follow=True)
    assert follow.status_code == 200 and "is not re-run" in follow.content.decode()
    assert not DecisionRerun.objects.exists()


def test_no_feedback_since_the_decision_is_refused(make_task, make_user):  # type: ignore[no-untyped-def]
    version, _ = ModelVersion.objects.get_or_create(name="qwen-vl-test", defaults={"backend": "vllm"})
    task = make_task(decision__model_version=version, decision__backend="vllm")
    FeedbackAggregate.objects.create(
        video=task.decision.video, reports=2, last_event_at=timezone.now() - timedelta(hours=1)
    )
    with pytest.raises(ModerationError, match="nothing new"):
        decision_rerun_request(decision_id=task.decision_id, by=make_user("moderator"))


@pytest.mark.parametrize("who", ["labeler", "policy_editor", "other moderator", "anonymous"])
def test_only_the_reviewer_holding_the_item_may_ask_or_poll(stale, make_user, who):  # type: ignore[no-untyped-def]
    task, _moderator, _client = stale
    client = Client()
    if who != "anonymous":
        client.force_login(make_user("moderator" if who == "other moderator" else who))
    ask = client.post(reverse("moderation:review_rerun", args=[task.pk]), **HTMX)
    poll = client.get(reverse("moderation:review_cot", args=[task.pk]), **HTMX)
    if who == "anonymous":
        # htmx is told in words (not redirected to the sign-in page, which it would swap into the panel)
        assert ask.status_code == poll.status_code == 401 and "You are signed out" in poll.content.decode()
    else:
        assert ask.status_code == poll.status_code == 403
    assert not DecisionRerun.objects.exists()


def test_an_admin_holding_the_item_may_ask(make_task, make_user):  # type: ignore[no-untyped-def]
    version, _ = ModelVersion.objects.get_or_create(name="qwen-vl-test", defaults={"backend": "vllm"})
    task = make_task(decision__model_version=version, decision__backend="vllm")
    admin = make_user("admin")
    review_claim_next(user=admin)
    FeedbackAggregate.objects.create(
        video=task.decision.video, reports=2, last_event_at=timezone.now() + timedelta(seconds=1)
    )
    client = Client()
    client.force_login(admin)
    assert client.post(reverse("moderation:review_rerun", args=[task.pk]), **HTMX).status_code == 200
    assert DecisionRerun.objects.get().requested_by == admin


def test_a_rerun_whose_solo_worker_was_ended_at_the_hard_limit_fails_with_the_reason_and_may_be_asked_again(
    stale,
):  # type: ignore[no-untyped-def]
    """What the infer worker's watchdog records before it ends the process (workbench/worker_limits.py): the
    reviewer reads which limit stopped the model at once, instead of "running" until the stall bound passes."""
    from workbench.worker_limits import _RECORDERS, time_limit_text

    task, moderator, client = stale
    rerun = decision_rerun_request(decision_id=task.decision_id, by=moderator)
    DecisionRerun.objects.filter(pk=rerun.pk).update(status="running", started_at=timezone.now())
    seconds = rerun_decision.time_limit
    message = time_limit_text(task_name="moderation.inference.tasks.rerun_decision", seconds=seconds, soft=False)
    _RECORDERS["moderation.inference.tasks.rerun_decision"]((rerun.pk,), {}, message)

    rerun.refresh_from_db()
    assert rerun.status == "failed" and rerun.finished_at is not None
    assert "could not re-run: Stopped after 15 minutes, this task's own time limit. The worker was restarted." in (
        rerun.error
    )
    panel = client.get(reverse("moderation:review_cot", args=[task.pk]) + "?part=rerun", **HTMX).content.decode()
    assert "Stopped after 15 minutes" in panel
    assert decision_rerun_request(decision_id=task.decision_id, by=moderator).pk != rerun.pk
