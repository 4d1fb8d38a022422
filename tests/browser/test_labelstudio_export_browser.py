"""The Label Studio export form in Chromium: each field's problem is said beside it as the form changes."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from tests.browser.signin import sign_in

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_a_field_problem_is_said_beside_the_field_as_the_labeler_types(page, make_user):
    """Seen in Chromium: a bad media address or day range was said only under the form, as one line ("Not
    exported: Media address: …"), and beside its field only after a download button sent the whole form."""
    sign_in(page, make_user("labeler").username)
    page.goto(reverse("annotation:labelstudio_export"))
    address = page.locator("#id_tags-base_url")
    error = page.locator("#id_tags-base_url-error")
    assert error.is_hidden()
    address.fill("ftp://workbench")
    address.press("Tab")  # a change: the live preview asks the server
    page.wait_for_selector("#id_tags-base_url-error:not([hidden])")
    assert error.inner_text() == "Not a web address: write it as http://host:port or https://host."
    assert address.input_value() == "ftp://workbench"  # what was typed stays
    assert page.locator("#tags-preview").inner_text().startswith("Not exported")
    assert page.locator("ul.messages[data-request-errors]").count() == 0

    page.fill("#id_tags-since", "2026-03-02")
    page.fill("#id_tags-until", "2026-03-01")
    page.locator("#id_tags-until").press("Tab")
    page.wait_for_function("() => document.getElementById('tags-preview').textContent.includes('swap them')")
    assert error.is_visible()  # the address is still wrong

    address.fill("http://workbench:8000")
    address.press("Tab")
    page.wait_for_selector("#id_tags-base_url-error", state="hidden")
    assert "swap them" in page.locator("#tags-preview").inner_text()  # the one problem left
    page.fill("#id_tags-since", "2026-03-01")
    page.locator("#id_tags-since").press("Tab")
    page.wait_for_function("() => !document.getElementById('tags-preview').textContent.includes('Not exported')")
