from __future__ import annotations

import pytest

from tests.factories import ReviewTaskFactory


@pytest.fixture
def make_task(policy_version):  # type: ignore[no-untyped-def]
    """A pending review task whose decision uses the one active policy version."""

    def _make(**kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("decision__policy_version", policy_version)
        return ReviewTaskFactory(**kwargs)

    return _make
