from __future__ import annotations

import pytest

from annotation.models import CotCorrection
from moderation.inference.services import model_version_register
from moderation.labels.models import ItemLabel
from tests.factories import (
    CotCorrectionFactory,
    DecidedVideoFactory,
    DecisionFactory,
    ReviewFactory,
    ReviewTaskFactory,
    SegmentFactory,
)
from training.services import preference_dataset_build

SHADOW_SERVER_DOWN = "http://127.0.0.1:9"  # the discard port: nothing answers


@pytest.fixture
def training_dirs(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Datasets and job outputs go to a per-test folder; the tiny base model stays shared (built once)."""
    settings.TRAINING_OUTPUT_DIR = tmp_path / "training"
    settings.TRAINING_BASE_MODEL = ""
    return settings.TRAINING_OUTPUT_DIR


@pytest.fixture
def override_review(policy_version):  # type: ignore[no-untyped-def]
    """A decision the model called safe that a reviewer overrode to "steering to private deals"."""
    decision = DecisionFactory(
        policy_version=policy_version,
        label="正向",
        video__title="Cheap phones",
        video__description="Best deal in town",
    )
    SegmentFactory(video=decision.video, index=0, text="add me on wechat to buy")
    task = ReviewTaskFactory(decision=decision)
    return ReviewFactory(task=task, decision=decision, note="Tells viewers to buy off the platform.")


@pytest.fixture
def cot_correction(policy_version):  # type: ignore[no-untyped-def]
    decision = DecisionFactory(policy_version=policy_version, label="正向", video__title="Miracle tea")
    return CotCorrectionFactory(decision=decision, label="夸大商品功效", status=CotCorrection.Status.ACCEPTED)


@pytest.fixture
def dataset(training_dirs, override_review):  # type: ignore[no-untyped-def]
    """A preference (DPO) dataset snapshot built from ``override_review``."""
    return preference_dataset_build(created_by=None)


@pytest.fixture
def gold_model(policy_version):  # type: ignore[no-untyped-def]
    """A model version that can be evaluated on the gold set (two videos with a trusted label)."""
    for label in ("正向", "引导私下交易"):
        video = DecidedVideoFactory(file="")
        ItemLabel.objects.create(
            video=video, label=label, source=ItemLabel.Source.REVIEW, policy_version=policy_version
        )
    return model_version_register(name="capped-candidate", backend="evidence_baseline")


@pytest.fixture
def retries(settings):  # type: ignore[no-untyped-def]
    """Shadow tries against a vLLM server that is down: 3 tries in all, the backoff from 60 s doubling to an hour."""
    settings.VLLM_SERVER_URL = SHADOW_SERVER_DOWN
    settings.SHADOW_MAX_ATTEMPTS = 3
    settings.SHADOW_RETRY_BASE_SECONDS = 60.0
    settings.SHADOW_RETRY_MAX_SECONDS = 3600.0
    return settings
