"""Two admins promoting two model versions at the same moment: one model serves afterwards, and a promotion whose gate
compared the candidate with a model that stopped serving meanwhile is refused, not applied over the newer one."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError

from moderation.inference.services import model_version_promote, model_version_register, model_version_serving
from moderation.models import ModelVersion
from tests.races import race
from training.errors import GateRefused
from training.evaluation import evaluation_execute, evaluation_start
from training.models import EvaluationRun
from training.release import model_version_promote_gated

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_promotions_at_once_leave_one_serving_model(policy_version):
    """Before: the second promotion's update saw only the version serving when it started, so the first's newly
    promoted version stayed marked serving beside the second's: two "serving" models."""
    model_version_serving()  # the baseline serves
    a = model_version_register(name="candidate-a", backend="evidence_baseline")
    b = model_version_register(name="candidate-b", backend="evidence_baseline")

    raced = race(lambda: model_version_promote(model_version=a), lambda: model_version_promote(model_version=b))

    assert raced.second_waited
    assert not isinstance(raced.second, Exception), raced.second
    assert list(ModelVersion.objects.filter(is_serving=True).values_list("name", flat=True)) == ["candidate-b"]


def test_the_database_refuses_a_second_serving_model(policy_version):
    model_version_serving()
    with pytest.raises(IntegrityError):
        ModelVersion.objects.create(name="sneaked-in", backend="evidence_baseline", is_serving=True)


def test_a_gated_promotion_racing_another_promotion_is_refused_with_what_serves_now(policy_version, tmp_path, settings):
    """The gate compared B with the baseline (B is better there); A was promoted while B's promotion waited. B is
    refused, saying A serves now, rather than replacing A on a comparison A never took part in."""
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    path = tmp_path / "set.jsonl"
    rows = [
        {"pid": "1", "tag": "正向", "title": "noodles", "OCR": "null", "ASR": "null"},
        {"pid": "2", "tag": "引导私下交易", "title": "加微信 私下交易", "OCR": "加微信", "ASR": "null"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    baseline = model_version_serving()
    a = model_version_register(name="candidate-a", backend="evidence_baseline")
    b = model_version_register(name="candidate-b", backend="evidence_baseline")
    for version in (baseline, b):
        run = evaluation_start(model_version=version, created_by=None, eval_set="kuaimod_file", file_path=str(path))
        evaluation_execute(run_id=run.pk)
    worse = EvaluationRun.objects.get(model_version=baseline)
    EvaluationRun.objects.filter(pk=worse.pk).update(metrics={**worse.metrics, "binary_accuracy": 0.5})

    raced = race(
        lambda: model_version_promote(model_version=a),
        lambda: model_version_promote_gated(candidate=b, by=None),
    )

    assert raced.second_waited
    assert isinstance(raced.second, GateRefused), raced.second
    assert str(raced.second).startswith("Not promoted: candidate-a was made the serving model a moment ago")
    assert list(ModelVersion.objects.filter(is_serving=True).values_list("name", flat=True)) == ["candidate-a"]
