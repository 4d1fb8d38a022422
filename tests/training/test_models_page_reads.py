"""The models screen (``/training/models/``) runs a fixed number of statements however many model versions are
registered: each version's latest evaluation, its release gate and its shadow figures were read version by version
(six or so statements each: 20 with one candidate, 92 with thirteen). Read at once, they say what the per-version
reads say."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from moderation.inference.services import model_version_promote, model_version_register
from moderation.models import ModelVersion
from tests.factories import DecisionFactory
from training.evaluation import evaluation_latest
from training.models import EvaluationRun, ShadowDecision
from training.release import promotion_check, shadow_agreement
from training.selectors import model_versions

pytestmark = pytest.mark.django_db

_METRICS = {"binary_accuracy": 0.8, "format_validity": 1.0, "multiclass_accuracy": 0.6}


def _run(model: ModelVersion, policy_version, *, key: str, status: str = "succeeded", ago: int = 0, **metrics):  # type: ignore[no-untyped-def]
    return EvaluationRun.objects.create(
        model_version=model,
        policy_version=policy_version,
        eval_set_key=key,
        status=status,
        metrics={**_METRICS, **metrics},
        finished_at=timezone.now() - timedelta(hours=ago) if status == "succeeded" else None,
    )


def _candidates(n: int, policy_version, *, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    """``n`` candidates of every kind the gate tells apart, in turn: better on a set the serving model has, worse
    on it, on a set it lacks, only a queued evaluation, none; every other one shadowed, some shadow tries failed."""
    for i in range(start, start + n):
        model = model_version_register(name=f"candidate-{i}", backend="evidence_baseline")
        kind = i % 5
        if kind == 0:
            _run(model, policy_version, key="gold:a", ago=3, binary_accuracy=0.1)  # an older run, not the latest
            _run(model, policy_version, key="gold:a", binary_accuracy=0.95)
        elif kind == 1:
            _run(model, policy_version, key="gold:a", binary_accuracy=0.5)
        elif kind == 2:
            _run(model, policy_version, key="file:b")
        elif kind == 3:
            _run(model, policy_version, key="gold:a", status="queued")
        if i % 2 == 0:
            for n_try, error in enumerate(["", "", "timed out", "out of memory"][: 2 + i % 3]):
                ShadowDecision.objects.create(
                    decision=DecisionFactory(policy_version=policy_version),
                    model_version=model,
                    label="正向",
                    agrees=n_try == 0,
                    error=error,
                    retry_at=timezone.now() if error == "timed out" else None,
                )


def _page_statements(client) -> int:  # type: ignore[no-untyped-def]
    url = reverse("training:model_list")
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_models_screen_reads_every_version_in_a_fixed_number_of_statements(policy_version, client_as):
    serving = model_version_promote(model_version=model_version_register(name="serving", backend="evidence_baseline"))
    _run(serving, policy_version, key="gold:a", ago=1)
    _run(serving, policy_version, key="gold:a", ago=5, binary_accuracy=0.99)  # older: not the one compared
    admin = client_as("admin")
    _candidates(3, policy_version)  # one of each shadow state: none failed, some failed
    few = _page_statements(admin)
    _candidates(12, policy_version, start=3)
    many = _page_statements(admin)
    assert many == few, (few, many)
    page = admin.get(reverse("training:model_list")).content.decode()
    assert "candidate-14" in page


def test_read_at_once_each_version_is_what_its_own_reads_say(policy_version):
    serving = model_version_promote(model_version=model_version_register(name="serving", backend="evidence_baseline"))
    _run(serving, policy_version, key="gold:a", ago=1)
    _run(serving, policy_version, key="gold:a", ago=5, binary_accuracy=0.99)
    _candidates(10, policy_version)

    rows = model_versions()
    assert rows[0]["version"] == serving and rows[0]["gate"] is None
    assert sum(row["version"].name.startswith("candidate-") for row in rows) == 10
    allowed = 0
    for row in rows:
        version = row["version"]
        assert row["evaluation"] == evaluation_latest(model_version=version), version.name
        assert row["shadow"] == shadow_agreement(model_version=version), version.name
        if row["gate"] is None:
            continue
        alone = promotion_check(candidate=version)
        gate = row["gate"]
        assert (gate.allowed, gate.reasons, gate.checks, gate.needs_evaluation, gate.never_evaluated) == (
            alone.allowed,
            alone.reasons,
            alone.checks,
            alone.needs_evaluation,
            alone.never_evaluated,
        ), version.name
        assert gate.failed_run == alone.failed_run, version.name
        assert (gate.candidate_run, gate.serving_run, gate.serving) == (
            alone.candidate_run,
            alone.serving_run,
            alone.serving,
        )
        allowed += gate.allowed
    assert allowed == 2  # candidates 0 and 5: better on the serving model's set
    reasons = " ".join(r for row in rows if row["gate"] for r in row["gate"].reasons)
    assert "evaluation #" in reasons and "has no evaluation on the same set" in reasons
    assert "has no finished evaluation; evaluate it first" in reasons
    assert any(row["shadow"]["last_error"] == "out of memory" for row in rows)


def test_a_candidate_refused_for_the_serving_models_missing_evaluation_links_to_evaluating_it(
    policy_version, client_as
):
    """Walk hwalk20: a trained version's evaluation done, Promote was refused with "The serving version … has no
    evaluation on the same set; evaluate it there first" and nothing to press: the admin had to find the serving
    version in the Evaluate form's list. The reason now links to that form with the serving version chosen."""
    serving = model_version_promote(model_version=model_version_register(name="serving", backend="evidence_baseline"))
    candidate = model_version_register(name="candidate", backend="evidence_baseline")
    _run(candidate, policy_version, key="gold:a")
    admin = client_as("admin")
    page = admin.get(reverse("training:model_list")).content.decode()
    row = page[page.index('data-version="candidate"') :]
    row = row[: row.index("</tr>")]
    assert "has no evaluation on the same set" in row
    link = f"{reverse('training:model_list')}?evaluate={serving.pk}"
    assert f'<a href="{link}">Evaluate serving</a>' in row
    chosen = admin.get(link).content.decode()
    assert f'<option value="{serving.pk}" selected>' in chosen  # the Evaluate form opens with it chosen
    # ... and focused, the registry not filtered to the one version (hwalk22 a16: ?version= showed its row alone).
    assert re.search(r'<select name="model_version"[^>]*autofocus', chosen)
    assert 'data-version="candidate"' in chosen and 'data-version="serving"' in chosen
    # Once the serving version has its evaluation on the set, the reason and the link are gone.
    _run(serving, policy_version, key="gold:a")
    page = admin.get(reverse("training:model_list")).content.decode()
    row = page[page.index('data-version="candidate"') :]
    assert "Evaluate serving" not in row[: row.index("</tr>")]
