from __future__ import annotations

import pytest

from tests.factories import DecisionFactory

STAGE_KEYS = ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")


@pytest.fixture
def decision(policy_version):  # type: ignore[no-untyped-def]
    """A model decision with five CoT stages, one citing a transcript segment."""
    cot = [
        {"key": k, "title": k.replace("_", " ").capitalize(), "text": f"model {k}", "evidence": []} for k in STAGE_KEYS
    ]
    cot[0]["evidence"] = [{"kind": "segment", "ref": 7, "label": "add me on wechat", "t": 2.5}]
    return DecisionFactory(policy_version=policy_version, label="引导私下交易", is_violation=True, cot=cot)
