"""The cascade inside live inference: stage 1 decides confident items, the rest reach the VLM."""

from __future__ import annotations

import pytest

from moderation.inference.services import cascade_train, decision_create_for_video
from moderation.models import Decision
from tests.factories import PolicyVersionFactory, VideoFactory
from tests.moderation.inference.trained_stage1 import stage1_for_the_test, stage1_trained_once

DEAL, SAFE = "引导私下交易", "正向"


class TestOnOneTrainedCascade:
    """The tests that read or change one stage-1 model trained with a cut at 0.5: trained once for the class
    (``trained_stage1.py``), each test's changes undone when it ends."""

    @pytest.fixture(scope="class")
    def trained_cascade_of_the_class(self, tmp_path_factory, django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
        # Trained on 24 items, stage 1 is sure of obvious cases (p≈0.98, uncertainty ≈0.17) and unsure of
        # text in a language it never saw (uncertainty ≈0.78): a cut at 0.5 separates the two.
        with stage1_trained_once(tmp_path_factory, django_db_blocker, threshold=0.5) as model:
            yield model

    @pytest.fixture
    def trained_cascade(self, request, db, trained_cascade_of_the_class):  # type: ignore[no-untyped-def]
        return stage1_for_the_test(request, trained_cascade_of_the_class)

    def test_confident_items_are_decided_at_stage_one_and_uncertain_ones_escalate(self, trained_cascade):
        confident = VideoFactory(title="加微信私聊，低价出货 私聊加微信")
        unsure = VideoFactory(title="add me on wechat for a private deal")  # English: stage 1 never saw any

        first = decision_create_for_video(video_id=confident.pk)
        second = decision_create_for_video(video_id=unsure.pk)

        assert first.cascade_stage == 1 and not first.cascade_escalated
        assert first.backend == "cascade_stage1" and first.label == DEAL
        assert first.model_version.name == "cascade:stage1"
        assert "decided at stage 1" in first.cot[2]["text"]
        assert second.cascade_stage == 2 and second.cascade_escalated
        assert second.cascade_uncertainty > trained_cascade.escalate_threshold
        assert second.backend == "evidence_baseline" and second.label == DEAL  # the stage-2 model's verdict
        # idempotent: a redelivered task does not decide again with either model
        assert decision_create_for_video(video_id=confident.pk).pk == first.pk
        assert Decision.objects.count() == 2

    def test_dashboard_shows_escalation_rate_and_retrain_is_admin_only(self, trained_cascade, client_as):
        from moderation.models import ItemLabel

        for title in ("加微信私聊，低价出货 私聊加微信", "add me on wechat for a private deal"):
            video = VideoFactory(title=title)
            ItemLabel.objects.create(video=video, label=DEAL, source=ItemLabel.Source.REVIEW)
            decision_create_for_video(video_id=video.pk)

        page = client_as("admin").get("/cascade/").content.decode()
        assert 'id="escalation-rate">50%' in page
        assert "stage1" in page and "100.0%" in page  # both stages right on the labelled items (in percent, hcas18)

        assert client_as("moderator").get("/cascade/").status_code == 403
        assert client_as("moderator").post("/cascade/train/", {"name": "x"}).status_code == 403
        from moderation.inference.cascade_models import CascadeTraining
        from moderation.inference.selectors import cascade_model_active
        from moderation.inference.tasks import train_cascade

        response = client_as("admin").post("/cascade/train/", {"name": "retrained", "threshold": "0.7"})
        assert response.status_code == 302
        assert train_cascade(CascadeTraining.objects.get(status="queued").pk) == "done"  # the default worker's part
        active = cascade_model_active()
        assert active.name == "retrained" and active.escalate_threshold == pytest.approx(0.7)
        bad = client_as("admin").post("/cascade/train/", {"name": "x", "threshold": "lots"}, follow=True)
        assert "must be a number" in bad.content.decode()
        client_as("admin").post("/cascade/train/", {"name": "by-target", "target_accuracy": "85"})
        assert train_cascade(CascadeTraining.objects.get(status="queued").pk) == "done"
        by_target = cascade_model_active()
        assert by_target.name == "by-target" and by_target.target_accuracy == pytest.approx(0.85)

    def test_the_threshold_changes_routing_without_retraining_and_previews_its_escalation_rate(
        self, trained_cascade, client_as
    ):
        unsure_title = "add me on wechat for a private deal"  # uncertainty ≈0.78 (see the fixture)
        first = decision_create_for_video(video_id=VideoFactory(title=unsure_title).pk)
        assert first.cascade_stage == 2
        decision_create_for_video(video_id=VideoFactory(title="加微信私聊，低价出货 私聊加微信").pk)
        admin = client_as("admin")
        page = admin.get("/cascade/").content.decode()
        # of the two scored items, a 0.5 cut escalates the unsure one; 0.95 escalates neither
        assert 'id="threshold-preview"' in page and "<td>50%</td>" in page and "<td>0%</td>" in page

        assert client_as("moderator").post("/cascade/threshold/", {"threshold": "0.95"}).status_code == 403
        for bad in ("1.5", "nan", "lots", ""):
            response = admin.post("/cascade/threshold/", {"threshold": bad}, follow=True)
            assert "must be" in response.content.decode() and "between 0 and 1" in response.content.decode()
        response = admin.post("/cascade/threshold/", {"threshold": "0.95"}, follow=True)
        assert "escalates items above uncertainty 0.95" in response.content.decode()
        trained_cascade.refresh_from_db()
        assert trained_cascade.escalate_threshold == pytest.approx(0.95)
        assert trained_cascade.trained_on == 24  # not retrained
        second = decision_create_for_video(video_id=VideoFactory(title=unsure_title).pk)
        assert second.cascade_stage == 1 and not second.cascade_escalated

    def test_a_threshold_set_by_hand_draws_no_target_and_says_routing_is_by_it(self, trained_cascade, client_as):
        """Walked at 1440x900: with a threshold set by hand the risk–coverage chart still drew its dashed target line,
        unlabelled, at the default 92%, and the target box read 92% as if that target routed; nothing said the
        threshold did. A target set again brings the line and its sentence back."""
        admin = client_as("admin")
        page = admin.post("/cascade/threshold/", {"threshold": "0.40"}, follow=True).content.decode()
        assert 'id="risk-coverage"' in page and 'id="target-line"' not in page and 'id="active-target"' not in page
        said = page[page.index('id="active-threshold"') :].split("</p>")[0]
        assert "No target accuracy is in force: stage 1 routes by the escalation threshold 0.40 set by hand" in said

        page = admin.post("/cascade/target/", {"target_accuracy": "90%"}, follow=True).content.decode()
        assert 'id="target-line"' in page and 'id="active-target"' in page and 'id="active-threshold"' not in page


def test_setting_a_threshold_needs_an_active_model(db, client_as):
    response = client_as("admin").post("/cascade/threshold/", {"threshold": "0.8"}, follow=True)
    assert "No stage-1 model is active" in response.content.decode()


def test_the_frame_count_is_not_a_stage_one_signal_in_training_or_live_inference(db, tmp_path, settings):
    """Titles are noise; short videos (few sampled frames) were labelled violative, as in the KuaiMod
    benchmark's artifact. Stage 1 does not learn from the count, so two videos alike but for their
    frame count get the same probability, whatever the labels said about short videos."""
    import random

    from moderation.models import ItemLabel

    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"  # shared artifacts live in media storage
    PolicyVersionFactory()
    rng = random.Random(3)
    for i in range(40):
        violative = i % 2 == 0
        video = VideoFactory(
            title="".join(rng.choice("山水风云花鸟虫鱼日月星辰") for _ in range(6)),
            sampled_frames=rng.choice([1, 2]) if violative else rng.choice([8, 9]),
        )
        ItemLabel.objects.create(video=video, label=DEAL if violative else SAFE, source=ItemLabel.Source.IMPORT)
    model = cascade_train(name="frames", threshold=1.0)  # never escalate: stage 1 decides everything

    short = decision_create_for_video(video_id=VideoFactory(title="山水花鸟", sampled_frames=1).pk)
    long = decision_create_for_video(video_id=VideoFactory(title="山水花鸟", sampled_frames=9).pk)

    assert model.metrics["label_counts"] == {DEAL: 20, SAFE: 20}
    assert (short.backend, long.backend) == ("cascade_stage1", "cascade_stage1")
    assert short.cascade_p_violative == pytest.approx(long.cascade_p_violative)
    assert short.label == long.label


def test_stage_two_counts_the_serving_models_reviewed_verdicts_made_before_stage_one(db):
    from moderation.inference.selectors import cascade_dashboard
    from moderation.models import ItemLabel

    PolicyVersionFactory()
    # Decided by the serving model while no stage-1 model was active (as in the demo), then reviewed.
    for title in ("add me on wechat for a private deal", "a sunny walk in the park"):
        video = VideoFactory(title=title)
        decision_create_for_video(video_id=video.pk)
        ItemLabel.objects.create(video=video, label=DEAL, source=ItemLabel.Source.REVIEW)

    stage2 = cascade_dashboard()["stages"][2]

    assert stage2["labelled"] == 2 and stage2["without_stage1"] == 2  # was 0
    assert stage2["exact_accuracy"] == pytest.approx(0.5)  # the baseline's deal verdict is right, the walk's is not
