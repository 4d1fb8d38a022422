"""Walk hwalk22: the labelers' lists (CoT corrections, adjudications, Tag2CoT) showed each label as its bare key
(正向, 引导私下交易, 夸大商品功效) while the screens they open show "Steering users to private deals (引导私下交易)": a
labeler who reads no Chinese could not scan a list for the decisions to work. Each list names the label beside its key,
in the words of the decision's policy version."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import AdjudicationFactory, CotCorrectionFactory, DecisionFactory, Tag2CotTaskFactory

pytestmark = pytest.mark.django_db


def test_the_correction_adjudication_and_tag2cot_lists_name_each_label(policy_version, client_as):
    decision = DecisionFactory(policy_version=policy_version, label="引导私下交易", is_violation=True)
    CotCorrectionFactory(decision=decision, label="夸大商品功效")
    admin = client_as("admin")

    corrections = admin.get(reverse("annotation:correction_list")).content.decode()
    assert "<span data-label-name>Steering users to private deals</span>" in corrections  # the model's label
    assert "<span data-label-name>Exaggerated product claims</span>" in corrections  # the correction's label
    # The wider label column squeezed the row's link to "Correc|t" at 1440x900: it keeps to one line.
    assert f'<td class="nowrap"><a href="{reverse("annotation:correction_edit", args=[decision.pk])}">' in corrections

    AdjudicationFactory(decision=DecisionFactory(policy_version=policy_version, label="正向"))
    adjudications = admin.get(reverse("annotation:adjudication_list")).content.decode()
    assert "<span data-label-name>Non-violative</span>" in adjudications

    Tag2CotTaskFactory(decision__policy_version=policy_version, status="open", stages=[], author=None)
    tasks = admin.get(reverse("annotation:tag2cot_list") + "?status=all").content.decode()
    assert "<span data-label-name>Steering users to private deals</span>" in tasks  # the human label
    assert "<span data-label-name>Non-violative</span>" in tasks  # the model's
