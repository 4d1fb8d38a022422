from __future__ import annotations

import pytest

from annotation.models import CotCorrection
from tests.factories import CotCorrectionFactory, DecisionFactory, ReviewFactory, ReviewTaskFactory, SegmentFactory


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
