"""GRPO reward parts, KuaiMod-file evaluation, the gate's refusals, and shadow mode."""

from __future__ import annotations

import json

import pytest

from moderation.inference.cot import render_blm, render_kuaimod
from moderation.inference.services import model_version_register, model_version_serving
from moderation.models import AuditEvent
from moderation.policies.seed import blm_guard_taxonomy, kuaimod_taxonomy
from moderation.policies.spec import PolicySpec
from tests.factories import DecisionFactory
from training.errors import TrainingError
from training.evaluation import evaluation_execute, evaluation_start
from training.models import EvaluationRun, ShadowDecision
from training.release import (
    model_version_promote_gated,
    promotion_check,
    shadow_agreement,
    shadow_decide,
    shadow_start,
)
from training.rewards import BackendCritic, correctness_score, reward_functions, structure_score

KUAIMOD = PolicySpec(taxonomy=kuaimod_taxonomy(), safe_label="正向", output_format="kuaimod")
BLM = PolicySpec(taxonomy=blm_guard_taxonomy(), safe_label="正向", output_format="blm")


def _blm_pair():  # type: ignore[no-untyped-def]
    major = BLM.taxonomy[0]
    other = next(m for m in BLM.taxonomy[1:] if m["tags"])
    return major["key"], major["tags"][0]["key"], major["tags"][1]["key"] if len(major["tags"]) > 1 else None, other


def test_blm_correctness_rewards_scene_and_violation_type():
    scene, tag, sibling, other = _blm_pair()
    stages = {"visual_location": "v", "risk_screening": "r", "causal_analysis": "c"}
    assert correctness_score(render_blm(stages, scene, tag, "high"), tag, BLM) == 1.0
    if sibling:
        assert correctness_score(render_blm(stages, scene, sibling, "high"), tag, BLM) == 0.5
    assert correctness_score(render_blm(stages, other["key"], other["tags"][0]["key"], "low"), tag, BLM) == 0.0
    assert correctness_score("no structure at all", tag, BLM) == 0.0
    assert structure_score(render_blm(stages, "made-up scene", "made-up label", "low"), BLM) == 1.0
    assert structure_score("<think>Visual location: x</think><answer>{}</answer>", BLM) == 0.0


def test_kuaimod_correctness_uses_the_major_category_as_scene():
    texts = {"content_extraction": "c"}
    assert correctness_score(render_kuaimod(texts, "引导私下交易"), "引导私下交易", KUAIMOD) == 1.0
    majors = {t["key"]: m["key"] for m in KUAIMOD.taxonomy for t in m["tags"]}
    sibling = next(t for t, m in majors.items() if m == majors["引导私下交易"] and t != "引导私下交易")
    assert correctness_score(render_kuaimod(texts, sibling), "引导私下交易", KUAIMOD) == 0.5
    assert correctness_score(render_kuaimod(texts, "正向"), "引导私下交易", KUAIMOD) == 0.0
    assert correctness_score(render_kuaimod(texts, "正向"), "正向", KUAIMOD) == 1.0


def test_reward_functions_follow_trl_signature_and_skip_a_zero_weight_critic():
    calls = []

    def critic(texts, labels):  # type: ignore[no-untyped-def]
        calls.append((list(texts), list(labels)))
        return [0.25] * len(texts)

    good = render_kuaimod({}, "正向")
    funcs, weights = reward_functions(
        KUAIMOD, weights={"correctness": 1.0, "structure": 0.5, "critique": 0.0}, critic=critic
    )
    assert weights == [1.0, 0.5] and len(funcs) == 2
    assert [
        f(prompts=["p", "p"], completions=[good, "junk"], label=["正向", "正向"], trainer_state=None) for f in funcs
    ] == [
        [1.0, 0.0],
        [1.0, 0.0],
    ]
    funcs, weights = reward_functions(KUAIMOD, weights={"critique": 2.0}, critic=critic)
    assert weights == [1.0, 1.0, 2.0]
    conversational = [[{"role": "assistant", "content": good}]]
    assert funcs[2](prompts=["p"], completions=conversational, label=["正向"]) == [0.25]
    assert calls == [([good], ["正向"])]


@pytest.mark.django_db
def test_the_guide_critic_goes_through_an_inference_backend():
    critic = BackendCritic("evidence_baseline", policy=KUAIMOD)
    scores = critic(
        ["Add me on WeChat to buy privately, cheaper than in the app", "nice noodles"], ["引导私下交易", "正向"]
    )
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores) and critic.calls == 1


@pytest.fixture
def kuaimod_file(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    path = tmp_path / "test.jsonl"
    rows = [
        {"pid": "1", "tag": "正向", "title": "cooking noodles at home", "OCR": "null", "ASR": "null", "images": []},
        {
            "pid": "2",
            "tag": "引导私下交易",
            "title": "加我微信 私下交易 add me on wechat",
            "OCR": "加微信",
            "ASR": "私聊",
            "images": [],
        },
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


@pytest.mark.django_db
def test_evaluation_on_a_kuaimod_file_reports_kuaimod_and_blm_metrics(policy_version, kuaimod_file):
    run = evaluation_start(
        model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=str(kuaimod_file)
    )
    run = evaluation_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    assert run.n_items == 2 and run.metrics["n"] == 2
    for key in ("binary_accuracy", "multiclass_accuracy", "strict_accuracy", "format_validity", "major_recall"):
        assert key in run.metrics
    assert run.metrics["format_validity"] == 1.0
    assert sum(map(sum, run.confusion["matrix"])) == 2
    assert evaluation_execute(run_id=run.pk) is None  # a redelivered task leaves a finished run alone


@pytest.mark.django_db
def test_missing_file_and_empty_gold_set_are_readable_errors(policy_version, settings, tmp_path):
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    with pytest.raises(TrainingError, match="No such file"):
        evaluation_start(
            model_version=model_version_serving(),
            created_by=None,
            eval_set="kuaimod_file",
            file_path=str(tmp_path / "nope.jsonl"),
        )
    with pytest.raises(TrainingError, match="Name the evaluation file"):
        evaluation_start(model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file")
    with pytest.raises(TrainingError, match="gold set is empty"):
        evaluation_start(model_version=model_version_serving(), created_by=None)


@pytest.mark.django_db
def test_gate_refuses_without_comparable_evaluations_and_audits_it(policy_version, make_user, kuaimod_file):
    admin = make_user("admin")
    candidate = model_version_register(name="candidate", backend="evidence_baseline")
    with pytest.raises(TrainingError, match="has no finished evaluation"):
        model_version_promote_gated(candidate=candidate, by=admin)
    evaluation_execute(
        run_id=evaluation_start(
            model_version=candidate, created_by=None, eval_set="kuaimod_file", file_path=str(kuaimod_file)
        ).pk
    )
    with pytest.raises(
        TrainingError, match="serving version evidence-baseline-v1 has no evaluation on the same set"
    ) as no:
        model_version_promote_gated(candidate=candidate, by=admin)
    # The set in words, not its comparison key "kuaimod_file:<name>:<digest>:policy_version=<pk>".
    assert f"(KuaiMod file {kuaimod_file.name} (sha256 " in str(no.value) and "kuaimod_file:" not in str(no.value)
    assert AuditEvent.objects.filter(action="model_promotion_refused", actor=admin).count() == 2
    assert model_version_serving().name == "evidence-baseline-v1"

    serving_run = evaluation_execute(
        run_id=evaluation_start(
            model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=str(kuaimod_file)
        ).pk
    )
    # The same backend scores the same: an equal candidate is no better, so it is refused.
    check = promotion_check(candidate=candidate)
    assert not check.allowed and check.checks[-1]["primary"] and not check.checks[-1]["ok"]
    with pytest.raises(
        TrainingError,
        match=r"Binary accuracy \(violation or not\) is (\S+) against the serving version's \1: not better",
    ):
        model_version_promote_gated(candidate=candidate, by=admin)
    assert model_version_serving().name == "evidence-baseline-v1"

    # Had the serving version scored lower on this set, the candidate is better and passes.
    assert serving_run is not None
    EvaluationRun.objects.filter(pk=serving_run.pk).update(metrics={**serving_run.metrics, "binary_accuracy": 0.5})
    assert promotion_check(candidate=candidate).allowed
    assert model_version_promote_gated(candidate=candidate, by=admin).is_serving


@pytest.mark.django_db
def test_gate_min_gain_and_margins(policy_version, make_user, kuaimod_file, settings):
    candidate = model_version_register(name="candidate", backend="evidence_baseline")
    runs = [
        evaluation_execute(
            run_id=evaluation_start(
                model_version=version, created_by=None, eval_set="kuaimod_file", file_path=str(kuaimod_file)
            ).pk
        )
        for version in (model_version_serving(), candidate)
    ]
    serving_run, candidate_run = runs
    assert serving_run is not None and candidate_run is not None
    EvaluationRun.objects.filter(pk=serving_run.pk).update(
        metrics={**serving_run.metrics, "binary_accuracy": 0.95, "format_validity": 1.0}
    )
    settings.TRAINING_GATE_MIN_GAIN = 0.1  # better, but by less than the required gain
    assert "not better by more than 0.100" in promotion_check(candidate=candidate).reasons[0]
    settings.TRAINING_GATE_MIN_GAIN = 0.0
    assert promotion_check(candidate=candidate).allowed
    EvaluationRun.objects.filter(pk=candidate_run.pk).update(metrics={**candidate_run.metrics, "format_validity": 0.5})
    reasons = promotion_check(candidate=candidate).reasons  # better on accuracy, but a gated metric drops
    # Said in the screens' words, as the evaluation page names the metric, not by its key.
    assert reasons == ["Format validity (outputs that parse) would drop from 1.000 to 0.500 (allowed drop 0.020)."]


@pytest.mark.django_db
def test_shadow_candidate_decides_live_items_and_reports_agreement(policy_version, make_user):
    serving = model_version_serving()
    candidate = model_version_register(name="shadow-candidate", backend="evidence_baseline")
    shadow_start(model_version=candidate, by=make_user("admin"))
    with pytest.raises(TrainingError, match="already in shadow mode"):
        shadow_start(model_version=candidate, by=None)
    decision = DecisionFactory(
        policy_version=policy_version, model_version=serving, label="正向", video__title="cooking noodles"
    )

    [shadow] = shadow_decide(decision_id=decision.pk)
    assert shadow_decide(decision_id=decision.pk) == []  # redelivered: nothing new

    assert shadow.model_version == candidate and shadow.agrees == (shadow.label == "正向")
    stats = shadow_agreement(model_version=candidate)
    assert stats["n"] == 1 and stats["rate"] == (1.0 if shadow.agrees else 0.0)
    assert ShadowDecision.objects.count() == 1


@pytest.mark.integration
def test_a_live_decision_enqueues_the_shadow_task(celery_worker, policy_version):
    import time

    from moderation.inference.services import decision_create_for_video
    from tests.factories import VideoFactory

    candidate = model_version_register(name="shadow-candidate", backend="evidence_baseline")
    shadow_start(model_version=candidate, by=None)
    video = VideoFactory(title="cooking noodles")
    decision = decision_create_for_video(video_id=video.pk)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ShadowDecision.objects.filter(decision=decision).exists():
        time.sleep(0.1)
    assert ShadowDecision.objects.filter(decision=decision, model_version=candidate).exists()


@pytest.mark.django_db
def test_evaluation_files_outside_the_import_roots_are_refused(policy_version, settings, tmp_path):
    """A server path typed into the evaluation form is confined like folder ingest: no absolute path
    elsewhere, no '..', no symlink out; nothing outside the roots is opened."""
    root = tmp_path / "imports"
    root.mkdir()
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"pid": "1", "tag": "正向", "title": "x"}', encoding="utf-8")
    (root / "link.jsonl").symlink_to(outside)
    settings.MEDIA_IMPORT_ROOTS = [str(root)]
    for path in ("/etc/passwd", str(root / ".." / "secret.jsonl"), "../../../../etc/passwd", str(root / "link.jsonl")):
        with pytest.raises(TrainingError, match="outside the import folders"):
            evaluation_start(
                model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=path
            )
    settings.MEDIA_IMPORT_ROOTS = []
    with pytest.raises(TrainingError, match="MEDIA_IMPORT_ROOTS"):
        evaluation_start(
            model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=str(outside)
        )
    assert not EvaluationRun.objects.exists()


def test_an_unparsed_answer_is_a_wrong_verdict_on_either_class():
    """Noise that does not parse earns no violative recall (it did as "not safe"), so the gate can compare a
    model that answers against one that does not."""
    from moderation.inference.backends import BackendResult
    from training.evaluation import UNPARSED, evaluation_scores

    tag = KUAIMOD.taxonomy[0]["tags"][0]["key"]
    noise = BackendResult(label="", is_violation=False, confidence=0.0, cot=[], parse_error="no stages")
    right = BackendResult(label=tag, is_violation=True, confidence=0.9, cot=[])
    scores = evaluation_scores([tag, "正向", tag], [noise, noise, right], KUAIMOD)
    m = scores.metrics
    assert m["binary_accuracy"] == pytest.approx(1 / 3)
    assert m["violative_recall"] == pytest.approx(1 / 2)
    assert m["nonviolative_recall"] == 0.0
    assert m["multiclass_accuracy"] == pytest.approx(1 / 3)
    assert m["format_validity"] == pytest.approx(1 / 3)
    assert UNPARSED in scores.confusion["labels"]  # the matrix still shows the unparsed answers as such
