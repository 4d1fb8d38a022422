from __future__ import annotations

import json
import random
from dataclasses import replace
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from moderation.errors import ModerationError
from moderation.inference.kuaimod import kuaimod_import
from moderation.inference.selectors import cascade_model_active
from moderation.inference.services import cascade_train
from moderation.inference.stage1.inputs import TextItem
from moderation.inference.stage1.model import BinaryHead, Stage1Config, stage1_fit, stage1_load
from moderation.inference.stage1.routing import (
    cascade_route,
    cut_for_target,
    entropy_for_confidence,
    normalised_entropy,
    risk_coverage,
    threshold_for_target,
)
from moderation.labels.models import ItemLabel
from tests.factories import VideoFactory
from tests.moderation.inference.kuaimod_samples import COOKING, PRIVATE_DEAL, write_split

SAFE = "正向"
DEAL = "引导私下交易"


def test_routing_escalates_uncertain_items_and_auto_decides_confident_ones() -> None:
    route = cascade_route(np.array([0.02, 0.5, 0.97, 0.45]), threshold=0.9)
    assert route.escalate.tolist() == [False, True, False, True]
    assert route.uncertainty[1] == pytest.approx(1.0)
    assert route.auto_share == pytest.approx(0.5)
    # A stricter threshold escalates more: nothing is certain enough at 0.
    assert cascade_route(np.array([0.02, 0.97]), threshold=0.0).escalate.all()


def test_a_target_accuracy_auto_decides_the_most_confident_items_that_reach_it() -> None:
    # Confidence 0.99, 0.95, 0.9, 0.8, 0.7, 0.6 (two items each); the 0.7 and 0.6 pairs hold the errors.
    p = np.array([0.99, 0.01, 0.95, 0.05, 0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4])
    correct = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0], dtype=bool)

    points = risk_coverage(p, correct)

    assert [pt["coverage"] for pt in points] == pytest.approx([2 / 12, 4 / 12, 6 / 12, 8 / 12, 10 / 12, 1.0])
    assert [pt["accuracy"] for pt in points] == pytest.approx([1, 1, 1, 1, 0.9, 9 / 12])
    assert cut_for_target(points, 0.9) == pytest.approx(0.7)  # 10 of 12 auto-decided at 90%
    assert cut_for_target(points, 0.92) == pytest.approx(0.8)  # the 0.7 pair would pull it to 90%
    threshold = threshold_for_target(p, correct, 0.92)
    assert threshold == pytest.approx(entropy_for_confidence(0.8))
    route = cascade_route(p, threshold)
    assert route.auto_share == pytest.approx(8 / 12)  # the eight items at confidence >= 0.8
    assert threshold_for_target(p[8:], correct[8:], 0.99) == 0.0  # nothing reaches it: escalate all
    with pytest.raises(ModerationError, match="target accuracy"):
        cut_for_target(points, 1.2)


def test_normalised_entropy_of_multiclass_rows() -> None:
    h = normalised_entropy(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    assert h.tolist() == pytest.approx([0.0, 1.0])
    with pytest.raises(ModerationError):
        cascade_route(np.array([0.5]), threshold=1.5)


def _training_set() -> tuple[list[TextItem], list[str]]:
    items = [TextItem(title=t, ocr="扫码加微信") for t in PRIVATE_DEAL] + [TextItem(title=t) for t in COOKING]
    return items, [DEAL] * len(PRIVATE_DEAL) + [SAFE] * len(COOKING)


def test_stage1_gives_calibrated_distributions_and_separates_obvious_cases() -> None:
    items, labels = _training_set()
    classifier = stage1_fit(items, labels, label_order=[SAFE, "色情低俗", DEAL])

    predicted, proba = classifier.predict([TextItem(title="加微信私聊买便宜货"), TextItem(title="教你做红烧鱼 #美食")])

    assert classifier.labels == [SAFE, "色情低俗", DEAL]
    assert proba.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert proba[:, 1].tolist() == [0.0, 0.0]  # a tag never seen in training gets no mass
    assert predicted == [DEAL, SAFE]
    assert proba[0, 2] > 0.5 > proba[1, 2]


def _speech_only_signal() -> tuple[list[TextItem], list[str]]:
    """Speech tells violations apart, with one item in five mislabelled. Titles are random strings
    over a small alphabet: pure noise, yet rich enough that a title model fits its own training
    items perfectly, better than the noisy speech does."""
    rng = random.Random(0)
    alphabet = "山水风云花鸟虫鱼日月星辰"
    items, labels = [], []
    for i in range(40):
        title = "".join(rng.choice(alphabet) for _ in range(6))
        violative = i % 2 == 0
        says_deal = violative != (i % 5 == 0)
        asr = "加微信私聊下单便宜出" if says_deal else "今天天气真好我们去公园"
        items.append(TextItem(title=title, ocr="字幕", asr=asr))
        labels.append(DEAL if violative else SAFE)
    return items, labels


def test_stacked_head_weighs_fields_by_out_of_fold_evidence() -> None:
    items, labels = _speech_only_signal()

    classifier = stage1_fit(items, labels)

    head = classifier.binary
    assert isinstance(head, BinaryHead) and head.config.binary_head == "stacked"  # the default binary head
    fields = [group[0] for group in head.kept]
    assert "asr" in fields and "title" in fields
    weights = dict(zip(fields, head.meta.coef_[0], strict=True))
    # Scored on their own training items, titles look perfect and speech only 80% right; only
    # out-of-fold scores show the titles to be noise, so the meta-learner must lean on speech.
    assert weights["asr"] > abs(weights["title"])  # scored in-sample, the title would weigh 2.5x more
    p = classifier.p_violative(
        classifier.predict_proba(
            [TextItem(title="山水花鸟", asr="私聊加微信"), TextItem(title="山水花鸟", asr="公园天气")]
        )
    )
    assert p[0] > 0.6 and p[1] < 0.4


def test_frame_count_is_left_out_by_default_and_used_only_when_asked() -> None:
    """Text is noise here and short videos (few frames) are the violative ones. By default stage 1
    ignores the count (a benchmark artifact); asked to, the meta-learner uses log(frames), and an item
    whose count is unknown gets the training mean, so it lands between."""
    rng = random.Random(1)
    items, labels = [], []
    for i in range(60):
        violative = i % 2 == 0
        frames = rng.choice([1, 2]) if violative else rng.choice([8, 9])
        title = "".join(rng.choice("山水风云花鸟虫鱼日月星辰") for _ in range(6))
        items.append(TextItem(title=title, frames=frames))
        labels.append(DEAL if violative else SAFE)

    probes = [TextItem(title="山水", frames=f) for f in (1, 9, 0)]
    default = stage1_fit(items, labels)
    assert default.binary.frames_fill is None
    assert default.binary.scores(items[:1]).shape[1] == len(default.binary.kept)
    p = default.p_violative(default.predict_proba(probes))
    assert p[0] == pytest.approx(p[1]) == pytest.approx(p[2])

    classifier = stage1_fit(items, labels, config=Stage1Config(frames_signal=True))

    assert classifier.binary.frames_fill == pytest.approx(np.mean([np.log(i.frames) for i in items]))
    p = classifier.p_violative(classifier.predict_proba(probes))
    assert p[0] > 0.8 and p[1] < 0.2
    assert p[1] < p[2] < p[0]
    # Trained without any frame counts, the head leaves the signal out even when asked.
    no_frames = stage1_fit([TextItem(title=i.title) for i in items], labels, config=Stage1Config(frames_signal=True))
    assert no_frames.binary.frames_fill is None


def test_stacked_head_skips_fields_without_vocabulary_and_joint_head_remains_available() -> None:
    items, labels = _training_set()  # no speech anywhere, OCR on violative items only

    stacked = stage1_fit(items, labels)
    joint = stage1_fit(items, labels, config=Stage1Config(binary_head="joint"))

    assert ("asr",) not in stacked.binary.kept
    assert len(joint.binary.kept) == 1  # one model over every field
    probe = [TextItem(title="加微信私聊买便宜货", ocr="扫码加微信"), TextItem(title="教你做红烧鱼 #美食")]
    for classifier in (stacked, joint):
        predicted, proba = classifier.predict(probe)
        assert predicted == [DEAL, SAFE]
        assert proba.sum(axis=1) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="binary head"):
        stage1_fit(items, labels, config=Stage1Config(binary_head="boosted"))


def test_stage1_refuses_a_training_set_without_violations() -> None:
    with pytest.raises(ModerationError, match="violative"):
        stage1_fit([TextItem(title=t) for t in COOKING], [SAFE] * len(COOKING))


def test_cascade_train_learns_from_database_labels_and_predicts(db, tmp_path, settings) -> None:
    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"  # shared artifacts live in media storage
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))
    # A reviewer's label beats the imported one: this cooking item was relabelled as a private deal.
    reviewed = VideoFactory(title="加微信私聊 红烧肉教程")
    ItemLabel.objects.create(video=reviewed, label=SAFE, source=ItemLabel.Source.IMPORT)
    ItemLabel.objects.create(video=reviewed, label=DEAL, source=ItemLabel.Source.REVIEW)

    model = cascade_train(name="stage1-test", threshold=0.8)

    assert cascade_model_active() == model
    assert model.trained_on == 25
    assert model.metrics["label_counts"] == {DEAL: 13, SAFE: 12}
    # In media storage, where the infer worker (another container) finds it; nothing in this node's MODELS_DIR.
    assert model.artifact_path == "models/cascade/stage1-test.joblib"
    assert (settings.MEDIA_ROOT / model.artifact_path).is_file() and not settings.MODELS_DIR.exists()
    assert model.escalate_threshold == pytest.approx(0.8) and model.target_accuracy is None
    classifier = stage1_load(settings.MEDIA_ROOT / model.artifact_path)
    labels, proba = classifier.predict([TextItem(title="私聊加微信下单"), TextItem(title="家常豆腐做法 #美食")])
    assert labels == [DEAL, SAFE]
    assert proba[0].sum() == pytest.approx(1.0)

    second = cascade_train(name="stage1-test-2")  # routed by the default target accuracy
    model.refresh_from_db()
    assert cascade_model_active() == second and not model.is_active
    assert second.target_accuracy == pytest.approx(settings.CASCADE_TARGET_ACCURACY)
    assert second.metrics["chosen"] in second.metrics["inner"]
    curve = second.metrics["held_out_curve"]
    assert curve and curve[-1]["coverage"] == pytest.approx(1.0)
    # the threshold auto-decides the largest held-out share whose accuracy reaches the target
    reaching = [pt for pt in curve if pt["accuracy"] >= second.target_accuracy]
    assert second.escalate_threshold == pytest.approx(entropy_for_confidence(min(pt["cut"] for pt in reaching)))


def test_cascade_train_without_labels_is_a_readable_error(db, tmp_path, settings) -> None:
    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"  # shared artifacts live in media storage
    settings.CASCADE_MIN_TRAIN_LABELS = 0  # the per-class check
    with pytest.raises(ModerationError, match="at least 2 safe"):
        cascade_train(name="empty")
    with pytest.raises(ModerationError, match="name"):
        cascade_train(name="../escape")


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_evaluate_holdout_prints_a_table_then_a_json_line(tmp_path) -> None:
    train = write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 8))
    test = write_split(tmp_path / "test.jsonl", start=100, take=slice(8, 12))
    out = StringIO()

    call_command("evaluate", "--train", str(train), "--test", str(test), "--threshold", "0.9", stdout=out)

    text = out.getvalue()
    assert "binary accuracy" in text.splitlines()[1]
    result = _last_json(text)
    assert result["n_test"] == 8 and result["n_train"] == 16
    assert result["binary_accuracy"] == pytest.approx(1.0)  # obvious cases
    assert result["cascade_auto_share"] + result["cascade_escalated_share"] == pytest.approx(1.0)
    for key in (
        "violative_precision",
        "violative_recall",
        "nonviolative_precision",
        "nonviolative_recall",
        "multiclass_accuracy",
        "major_recall",
    ):
        assert key in result


def test_evaluate_cross_validation_over_one_file(tmp_path) -> None:
    data = write_split(tmp_path / "all.jsonl", start=0, take=slice(0, 12))
    out = StringIO()

    call_command("evaluate", "--train", str(data), "--cv", "3", "--threshold", "1.0", stdout=out)

    result = _last_json(out.getvalue())
    assert result["mode"] == "cv" and result["n"] == 24
    assert result["binary_accuracy"] > 0.9
    assert result["cascade_auto_share"] == pytest.approx(1.0)  # threshold 1.0 escalates nothing
    assert result["cascade_escalated_share"] == pytest.approx(0.0)


def test_evaluate_needs_exactly_one_of_test_and_cv(tmp_path) -> None:
    data = write_split(tmp_path / "all.jsonl", start=0, take=slice(0, 12))
    with pytest.raises(CommandError):
        call_command("evaluate", "--train", str(data), stdout=StringIO())
    with pytest.raises(CommandError, match="No such file: .*missing.jsonl"):
        call_command("evaluate", "--train", str(tmp_path / "missing.jsonl"), "--cv", "3", stdout=StringIO())


def test_evaluate_reports_the_cascade_at_each_target_and_the_reliability_table(tmp_path) -> None:
    data = write_split(tmp_path / "all.jsonl", start=0, take=slice(0, 12))
    out = StringIO()

    # Plain CV runs the nested code path with one candidate (cheaper); the cuts come from inner folds.
    call_command("evaluate", "--train", str(data), "--cv", "3", "--target-accuracy", "0.92", stdout=out)

    result = _last_json(out.getvalue())
    assert result["target_accuracy"] == pytest.approx(0.92)
    rows = {row["target"]: row for row in result["cascade_at_targets"]}
    assert set(rows) == {0.9, 0.92, 0.95}
    # The routing target's row is the cascade the headline keys describe (same inner-fold cuts).
    assert rows[0.92]["auto_share"] == pytest.approx(result["cascade_auto_share"])
    assert rows[0.92]["auto_binary_accuracy"] == result["cascade_auto_binary_accuracy"]
    assert all(0.0 <= row["oracle_coverage"] <= 1.0 for row in rows.values())
    assert rows[0.9]["oracle_coverage"] >= rows[0.95]["oracle_coverage"]  # a stricter target covers less
    assert sum(row["n"] for row in result["reliability"]) == 24
    assert "cascade @ target 0.95" in out.getvalue()


def test_the_feature_options_change_what_they_name() -> None:
    """n-gram range, analyzer and class weight: the pre-registered changes of bench/stage1_candidates.py."""
    from moderation.inference.stage1.model import binary_head_fit

    candidates = (
        Stage1Config(name="stacked-char24", ngram_range=(2, 4)),
        Stage1Config(name="stacked-char13-across", ngram_range=(1, 3), analyzer="char"),
        Stage1Config(name="stacked-char12-unweighted", class_weight=None),
    )
    items = [TextItem(title=t, ocr="加 微信\n私聊") for t in ("加微信私聊", "私聊微信", "家常菜", "红烧肉做法")] * 3
    y = np.array([1, 1, 0, 0] * 3)
    cheap = {"stack_cs": (1.0,), "stack_folds": 2}
    heads = {c.name: binary_head_fit(items, y, replace(c, **cheap)) for c in candidates}
    baseline = binary_head_fit(items, y, Stage1Config(**cheap))

    def ocr_vocabulary(head: BinaryHead) -> set[str]:
        return set(head.blocks[head.kept.index(("ocr",))].vectorizers["ocr"].vocabulary_)

    assert "信\n私" in ocr_vocabulary(heads["stacked-char13-across"])  # across the segment break
    assert not any("\n" in gram.strip("\n") for gram in ocr_vocabulary(baseline))  # char_wb stops at it
    assert min(len(g) for g in ocr_vocabulary(heads["stacked-char24"])) == 2  # no single characters
    assert min(len(g) for g in ocr_vocabulary(baseline)) == 1
    assert all(m.class_weight is None for m in heads["stacked-char12-unweighted"].models)
    assert all(m.class_weight == "balanced" for m in baseline.models)


def test_cross_fit_serving_scores_new_items_with_the_fold_models_the_meta_learner_was_fitted_on() -> None:
    """``serving="cross-fit"`` (bench/RESULTS.md, round 8): a new item's field score is the mean logit of that
    field's inner-fold models at the chosen C; the default refits one model per field and keeps no fold models."""
    from moderation.inference.stage1.model import binary_head_fit

    items, labels = _speech_only_signal()
    y = np.array([label != SAFE for label in labels], dtype=int)
    cheap = {"stack_cs": (1.0, 4.0), "stack_folds": 3}
    refit = binary_head_fit(items, y, Stage1Config(**cheap))
    cross = binary_head_fit(items, y, Stage1Config(serving="cross-fit", **cheap))
    new = [TextItem(title="山水花鸟", asr="私聊加微信"), TextItem(title="星辰日月", asr="公园天气")]

    assert refit.fold_models == [] and len(cross.fold_models) == len(cross.models)
    assert all(len(folds) == 3 for folds in cross.fold_models)
    asr = cross.kept.index(("asr",))
    expected = np.mean([m.decision_function(b.transform(new)) for b, m in cross.fold_models[asr]], axis=0)
    assert cross.scores(new)[:, asr] == pytest.approx(expected)
    assert cross.scores(new) == pytest.approx(cross.cross_fit_scores(new))
    assert cross.refit_scores(new) == pytest.approx(refit.scores(new))  # the same fits, served the other way
    assert not np.allclose(cross.scores(new), refit.scores(new))
    assert cross.held_out_p == pytest.approx(refit.held_out_p)  # the choice and the cut are unchanged
    with pytest.raises(ModerationError, match="without its fold models"):
        stale = BinaryHead(replace(refit.config, serving="cross-fit"))
        stale.models, stale.blocks = refit.models, refit.blocks
        stale.scores(new)
    with pytest.raises(ValueError, match="serving"):
        binary_head_fit(items, y, Stage1Config(serving="bagged", **cheap))


def test_stage1_is_not_trained_or_made_active_from_too_few_labels(db, tmp_path, settings, client_as) -> None:
    from django.urls import reverse

    from workbench import settings as production

    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"  # shared artifacts live in media storage
    settings.CASCADE_MIN_TRAIN_LABELS = production.CASCADE_MIN_TRAIN_LABELS
    assert settings.CASCADE_MIN_TRAIN_LABELS == 40
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))  # 24 labelled items
    with pytest.raises(ModerationError, match="at least 40 labelled items .* there are 24"):
        cascade_train(name="too-early")
    assert cascade_model_active() is None and not Path(settings.MODELS_DIR / "cascade").exists()
    response = client_as("admin").post(reverse("moderation:cascade_train"), {"name": "too-early"}, follow=True)
    assert "there are 24" in response.content.decode() and cascade_model_active() is None
