"""A form left open while the user signs in again in another tab (which renews the CSRF token) still
saves: static/workbench.js sends the browser's current token (issue 22's walk-through found the typed
CoT correction lost behind Django's bare "CSRF verification failed" page)."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from annotation.models import CotCorrection
from tests.browser.signin import sign_in
from tests.factories import DecisionFactory

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_a_correction_typed_before_signing_in_again_in_another_tab_is_saved(page, make_user, policy_version):
    decision = DecisionFactory(policy_version=policy_version)
    labeler = make_user("labeler")
    sign_in(page, labeler.username)
    page.goto(reverse("annotation:correction_edit", args=[decision.pk]))
    page.fill("textarea[name='stage-analysis']", "The speech asks viewers to pay by bank transfer.")

    other_tab = page.context.new_page()
    sign_in(other_tab, labeler.username, form=True)  # a new sign-in: the browser now holds a new CSRF token
    other_tab.close()

    with page.expect_navigation():
        page.click("button[value=submit]")
    correction = CotCorrection.objects.get(decision=decision)
    assert "bank transfer" in str(correction.stages)
    assert "out of date" not in page.content()
