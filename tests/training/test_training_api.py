"""Training jobs and evaluations over the API (/api/training/): an admin's script lists them with their state and
starts one through the service the screens' forms use, so the GPU job cap (MAX_QUEUED_GPU_JOBS), the audit log and
the checks apply as they do on the forms. Before, the cap existed only on the forms: there was no API to start
either, and a script that wanted one drove the HTML form."""

from __future__ import annotations

import jsonschema
import pytest
from rest_framework.test import APIClient

from moderation.inference.services import model_version_register
from moderation.review.models import AuditEvent
from tests.workbench.test_api_error_schema import _check, _operation
from training.models import EvaluationRun, TrainingJob
from workbench.tokens import api_token_issue

pytestmark = pytest.mark.django_db

JOBS, EVALUATIONS = "/api/training/jobs/", "/api/training/evaluations/"


@pytest.fixture
def schema(client_as):  # type: ignore[no-untyped-def]
    response = client_as("moderator").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def _script(make_user, role: str = "admin", scope: str = "write") -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.user = make_user(role)  # type: ignore[attr-defined]
    key = api_token_issue(user=client.user, scope=scope).key  # type: ignore[attr-defined]
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _ok(response):  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return response.json()


def test_an_admin_script_starts_a_job_and_reads_its_state(dataset, make_user, schema):  # type: ignore[no-untyped-def]
    script = _script(make_user)
    started = script.post(JOBS, {"dataset": dataset.pk, "params": {"max_steps": 2}}, format="json")
    assert started.status_code == 201, started.content
    job = TrainingJob.objects.get()
    assert started.json()["id"] == job.pk and started.json()["status"] == "queued"
    assert job.total_steps == 2 and job.created_by == script.user  # type: ignore[attr-defined]
    assert AuditEvent.objects.filter(action="training.job_start", object_id=str(job.pk)).count() == 1

    again = script.post(JOBS, {"dataset": dataset.pk, "params": {"max_steps": 2}}, format="json")
    assert again.status_code == 200 and again.json()["id"] == job.pk  # the open job, as the form says it
    assert TrainingJob.objects.count() == 1

    TrainingJob.objects.filter(pk=job.pk).update(status="running", step=1)
    listed = _ok(script.get(JOBS))
    assert [(r["id"], r["status"], r["step"]) for r in listed["results"]] == [(job.pk, "running", 1)]
    detail = _ok(script.get(f"{JOBS}{job.pk}/"))
    assert detail["dataset_name"] == dataset.name and detail["params"]["max_steps"] == 2


def test_an_evaluation_is_started_and_listed(gold_model, policy_version, make_user, schema):  # type: ignore[no-untyped-def]
    script = _script(make_user)
    started = script.post(EVALUATIONS, {"model_version": gold_model.pk}, format="json")
    assert started.status_code == 201, started.content
    run = EvaluationRun.objects.get()
    assert started.json()["eval_set"] == "gold" and run.policy_version_id == policy_version.pk
    assert AuditEvent.objects.filter(action="evaluation.start").count() == 1
    listed = _ok(script.get(EVALUATIONS))
    assert [(r["id"], r["status"], r["model_version_name"]) for r in listed["results"]] == [
        (run.pk, "queued", "capped-candidate")
    ]


def test_past_the_gpu_cap_a_start_is_429_naming_the_cap_and_recorded(
    dataset,
    gold_model,
    make_user,
    settings,
    schema,
):  # type: ignore[no-untyped-def]
    settings.MAX_QUEUED_GPU_JOBS = 1
    script = _script(make_user)
    assert script.post(JOBS, {"dataset": dataset.pk, "params": {"max_steps": 2}}, format="json").status_code == 201

    refused = script.post(JOBS, {"dataset": dataset.pk, "params": {"max_steps": 3}}, format="json")
    body = _check(schema, JOBS, "POST", refused, 429)
    assert "MAX_QUEUED_GPU_JOBS (1)" in body["detail"] and "This training job was not queued" in body["detail"]
    declared = _operation(schema, JOBS, "POST")["responses"]["429"]
    assert "MAX_QUEUED_GPU_JOBS" in declared["description"]
    jsonschema.validate(int(refused["Retry-After"]), declared["headers"]["Retry-After"]["schema"])
    assert int(refused["Retry-After"]) > 0

    evaluation = script.post(EVALUATIONS, {"model_version": gold_model.pk}, format="json")
    assert _check(schema, EVALUATIONS, "POST", evaluation, 429)["detail"].endswith("then start it again.")
    assert TrainingJob.objects.count() == 1 and EvaluationRun.objects.count() == 0
    refusals = AuditEvent.objects.filter(action="training.gpu_queue_full").order_by("pk")
    assert [(e.actor, e.payload["refused"]) for e in refusals] == [
        (script.user, "training job"),  # type: ignore[attr-defined]
        (script.user, "evaluation"),  # type: ignore[attr-defined]
    ]


def test_the_services_checks_answer_400_with_their_words(dataset, make_user, schema):  # type: ignore[no-untyped-def]
    script = _script(make_user)
    steps = script.post(JOBS, {"dataset": dataset.pk, "params": {"max_steps": 0}}, format="json")
    assert _check(schema, JOBS, "POST", steps, 400)["detail"] == "max_steps must be between 1 and 100000."
    outside = script.post(JOBS, {"dataset": dataset.pk, "base_model": "/etc"}, format="json")
    assert "outside the model folders" in _check(schema, JOBS, "POST", outside, 400)["base_model"][0]
    guide = script.post(
        JOBS, {"dataset": dataset.pk, "kind": "grpo", "params": {"guide_base_model": "/etc"}}, format="json"
    )
    assert "outside the model folders" in str(guide.json()["params"]) and guide.status_code == 400
    empty = model_version_register(name="no-gold", backend="evidence_baseline")
    gold = script.post(EVALUATIONS, {"model_version": empty.pk}, format="json")
    assert "The gold set is empty" in _check(schema, EVALUATIONS, "POST", gold, 400)["detail"]
    assert TrainingJob.objects.count() == 0 and EvaluationRun.objects.count() == 0


def test_only_admins_and_only_write_tokens_start(dataset, make_user, schema):  # type: ignore[no-untyped-def]
    moderator = _script(make_user, role="moderator")
    _check(schema, JOBS, "GET", moderator.get(JOBS), 403)
    _check(schema, JOBS, "POST", moderator.post(JOBS, {"dataset": dataset.pk}, format="json"), 403)
    reader = _script(make_user, role="admin", scope="read")
    assert reader.get(EVALUATIONS).status_code == 200
    refused = reader.post(JOBS, {"dataset": dataset.pk}, format="json")
    assert "scope is read" in _check(schema, JOBS, "POST", refused, 403)["detail"]
    assert _check(schema, JOBS, "GET", APIClient().get(JOBS), 401)["detail"]
    assert TrainingJob.objects.count() == 0
