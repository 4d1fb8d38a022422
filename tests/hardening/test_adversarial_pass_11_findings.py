"""Pass 11: an adversarial pass over what earlier passes touched least: the look-alike username check against
names a confusables table would catch (Armenian letters mixed with Latin, Latin's own small capitals and dotless
letters, a capital I for an l, "rn" for "m"), and a Label Studio project's hostile tasks and annotations (anyone with
access to the project edits them), a webhook receiver's address written another way, and JSON numbers past a float's range. Each test below is a finding and its fix: it fails on the code before the fix.
What was probed and held is listed in /work/shots/hadv21/FINDINGS.md."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from annotation.labelstudio import labelstudio_import_project
from annotation.models import LabelStudioImport
from moderation.integrations.models import WebhookEndpoint
from moderation.integrations.services import integration_create
from moderation.integrations.webhooks import WebhookEndpointExists, webhook_endpoint_create
from moderation.review.models import Review, ReviewQueue, ReviewTask
from tests.factories import DecisionFactory
from tests.training.conftest import dataset, override_review, training_dirs  # noqa: F401 - fixtures used below
from training.models import EvaluationRun, TrainingJob
from workbench.tokens import api_token_issue

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("existing", "lookalike", "said"),
    [
        ("root", "r\u0585\u0585t", "mixes Latin letters with Armenian ones"),  # ARMENIAN SMALL LETTER OH
        ("alice", "a\u01c0ice", "looks like the existing user “alice”"),  # LATIN LETTER DENTAL CLICK
        ("admin", "\u1d00dmin", "looks like the existing user “admin”"),  # LATIN LETTER SMALL CAPITAL A
        ("admin", "\u0251dmin", "looks like the existing user “admin”"),  # LATIN SMALL LETTER ALPHA
        ("admin", "adm\u0131n", "looks like the existing user “admin”"),  # LATIN SMALL LETTER DOTLESS I
        ("alice", "aIice", "looks like the existing user “alice”"),  # a capital I for the l
        ("paypal", "paypa1", "looks like the existing user “paypal”"),
        ("moderator", "rnoderator", "looks like the existing user “moderator”"),
        ("bob", "b0b", "looks like the existing user “bob”"),
        ("ops", "\u043e\u0440\u03b2", "mixes Cyrillic letters with Greek ones"),  # two alphabets, neither Latin
    ],
)
def test_a_username_a_confusables_table_would_catch_is_refused(existing: str, lookalike: str, said: str) -> None:
    """The check knew Latin against Cyrillic and Greek only, and compared case-folded names: "rօօt" with Armenian
    o's, "ᴀdmin" (a Latin small capital), "aIice" with a capital I were taken beside "root", "admin" and "alice", and
    every screen naming users by username showed them alike."""
    User.objects.create_user(existing)
    with pytest.raises(ValidationError, match=said):
        User(username=lookalike, password="x").full_clean()


@pytest.mark.parametrize("name", ["佐々木", "田中taro", "김민수kim", "Hawaiʻi", "admin2", "ivan", "иван", "clarence"])
def test_names_in_one_writing_system_and_unlike_anyones_are_still_taken(name: str) -> None:
    for existing in ("admin", "alice", "ivan-p"):
        User.objects.create_user(existing)
    User(username=name, password="x").full_clean()  # no error


def _ls_task(task_id: Any, decision_id: Any, annotation_id: Any, result: Any) -> SimpleNamespace:
    return SimpleNamespace(
        id=task_id, data={"decision_id": decision_id}, annotations=[{"id": annotation_id, "result": result}]
    )


LABEL = [{"from_name": "label", "type": "choices", "value": {"choices": ["正向"]}}]


def test_a_label_studio_task_naming_no_decision_or_of_the_wrong_shape_is_skipped_and_the_rest_imported(
    make_user, policy_version
) -> None:  # type: ignore[no-untyped-def]
    """A project's tasks and annotations are anyone's to edit in Label Studio. One task naming a decision this
    workbench does not have stopped the whole import there (every later annotation never came back); a decision id
    "12", an annotation id past an integer column or a result that is a string or holds a string was a traceback."""
    queue = ReviewQueue.objects.create(slug="ls-hostile", name="ls hostile")
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ReviewTask.objects.create(decision=decision, queue=queue)
    tasks = [
        _ls_task(1, 987654321, 11, LABEL),  # no such decision
        _ls_task(2, str(decision.pk), 12, LABEL),
        _ls_task(3, decision.pk, 10**12, LABEL),
        _ls_task(4, decision.pk, 14, "正向"),
        _ls_task(5, decision.pk, 15, ["正向"]),
        _ls_task(6, decision.pk, 16, [{"from_name": "label", "value": {"choices": "正向"}}]),
        _ls_task(7, decision.pk, 17, [{"from_name": "cot", "value": {"text": {"a": 1}}}]),
        _ls_task(8, True, 18, LABEL),
        _ls_task(9, decision.pk, 19, LABEL),  # the one good annotation, after all the others
    ]
    client = SimpleNamespace(tasks=SimpleNamespace(list=lambda **_: tasks))
    reviewer = make_user("moderator")

    result = labelstudio_import_project(client=client, ls_url="http://ls.test", project_id=3, by=reviewer)

    assert result.imported == 1 and [o["result"] for o in result.outcomes] == ["review"]
    assert Review.objects.get().reviewer_id == reviewer.pk
    assert LabelStudioImport.objects.get().ls_annotation_id == 19
    reasons = {s["task"]: s["reason"] for s in result.skipped}
    assert set(reasons) == {"1", "2", "3", "4", "5", "6", "7", "8"}
    assert reasons["1"] == "Label Studio task 1 names no decision of this workbench."
    assert "decision_id is '" in reasons["2"] and "annotation id is '1000000000000'" in reasons["3"]
    assert "not a list" in reasons["4"] and "not an object" in reasons["5"] and "not a list of names" in reasons["6"]
    assert "not a list of strings" in reasons["7"] and "decision_id is 'True'" in reasons["8"]


@pytest.mark.parametrize(
    "again",
    [
        "https://HOOKS.platform.example/moderation",
        "HTTPS://hooks.platform.example/moderation",
        "https://hooks.platform.example./moderation",
        "https://hooks.platform.example:443/moderation",
    ],
)
def test_a_webhook_address_written_another_way_is_the_same_endpoint_not_a_second(again: str) -> None:
    """One endpoint per receiver per integration was checked on the address as typed: the host in capitals, with its
    root dot or with the scheme's own port made a second endpoint for the same receiver, sent every event twice."""
    integration, _token = integration_create(name="platform-11")
    first, _secret = webhook_endpoint_create(
        integration=integration, url="https://hooks.platform.example/moderation", event_types=["model.promoted"]
    )
    with pytest.raises(WebhookEndpointExists) as refused:
        webhook_endpoint_create(integration=integration, url=again, event_types=["model.promoted"])
    assert refused.value.existing.pk == first.pk and WebhookEndpoint.objects.count() == 1
    # Another path, port or scheme is another receiver.
    for other in ("https://hooks.platform.example/moderation/v2", "https://hooks.platform.example:8443/moderation"):
        webhook_endpoint_create(integration=integration, url=other, event_types=["model.promoted"])
    assert WebhookEndpoint.objects.count() == 3


@pytest.mark.parametrize(
    ("url", "body", "said"),
    [
        ("/api/training/jobs/", '{"kind": "sft", "dataset": 1e400}', "dataset"),
        ("/api/training/evaluations/", '{"model_version": 1e400, "policy_version": 1}', "model_version"),
        ("/api/training/evaluations/", '{"model_version": -1e400, "policy_version": 1}', "model_version"),
        ("/api/videos/", '{"path": "clip.mp4", "title": [1, {"a": 1e999}]}', "title[1].a"),
    ],
)
def test_a_json_number_past_a_floats_range_is_a_400_saying_so_not_a_500(
    make_user, url: str, body: str, said: str
) -> None:  # type: ignore[no-untyped-def]
    """JSON has no bound on a number's size and Python reads 1e400 as infinity (DRF refuses only the literals NaN and
    Infinity): an admin's API token sending it for an id (a job's dataset, an evaluation's model) was a 500, int(inf)
    overflowing; a text field took it as the string "inf"."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=make_user('admin')).key}")
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert f"{said} is a number too large to read" in response.json()["detail"]
    assert not TrainingJob.objects.exists() and not EvaluationRun.objects.exists()


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ('{"max_steps": true}', "max_steps must be a number, not true."),
        ('{"batch_size": false}', "batch_size must be a number, not false."),
        ('{"max_steps": 2.9}', "max_steps must be a whole number, not 2.9."),
        ('{"seed": 41.5}', "seed must be a whole number, not 41.5."),
    ],
)
def test_a_training_parameter_given_true_or_a_fraction_is_refused_not_read_as_another_number(
    dataset,  # noqa: F811
    make_user,
    params: str,
    said: str,
) -> None:  # type: ignore[no-untyped-def]
    """``int(True)`` is 1 and ``int(2.9)`` is 2: an API body's ``"max_steps": true`` queued a 1-step job and 2.9 a
    2-step one, with nothing said."""
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=make_user('admin')).key}")
    response = api.post(
        "/api/training/jobs/", f'{{"dataset": {dataset.pk}, "params": {params}}}', content_type="application/json"
    )
    assert response.status_code == 400, (response.status_code, response.content[:200])
    assert said in response.json()["detail"]
    assert not TrainingJob.objects.exists()
