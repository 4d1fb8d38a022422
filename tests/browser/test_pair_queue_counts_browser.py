"""The pair queue's heading in Chromium at 1440x900: below the cap it says the counts the rule over every pair gave
(for a moderator outside the restricted group and an admin), past it "N+ waiting" and "N+ reviewed", as the pager
does. ``WORKBENCH_SHOTS`` (a folder): each screen is saved there too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_list_pages_browser import _shot
from tests.moderation.reproduction.test_pair_queue_counts import _claims, _old_counts
from tests.workbench import test_pagination_screens
from workbench import pagination

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.fixture
def world() -> dict[str, Any]:
    """The pagination screens' library and readers, built for this test: it commits them (a live server reads them),
    so ``test_pagination_screens``' module-wide ``world`` (one rolled-back transaction) cannot serve it."""
    return test_pagination_screens.build_world()


@pytest.mark.django_db(transaction=True)
def test_the_pair_queue_heading_counts_what_the_reader_may_open(page, world: dict[str, Any], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1440, "height": 900})
    _claims(world["readers"])
    url = reverse("moderation:repro_queue")
    for name in ("outsider", "admin"):
        reader = world["readers"][name]
        old = _old_counts(reader)
        sign_in(page, reader.username)
        page.goto(url)
        heading = page.locator("main p.hint").first
        said = heading.inner_text()
        assert f"{old['pending']} waiting · {old['claimed']} claimed · {old['reviewed']} reviewed" in said, said
        assert heading.is_visible()
        _shot(page, f"pair_queue_{name}")
        with monkeypatch.context() as capped:
            capped.setattr(pagination, "COUNT_CAP", 5)
            capped.setattr("moderation.reproduction.views.PAIRS_PER_PAGE", 2)
            page.goto(url)
            said = page.locator("main p.hint").first.inner_text()
            assert f"5+ waiting · {old['claimed']} claimed · 5+ reviewed" in said, said
            assert "page 1 (5+ pairs waiting)" in page.locator("nav.pager").inner_text()
            _shot(page, f"pair_queue_{name}_capped")
        page.get_by_role("link", name="5+ reviewed").click()
        page.wait_for_url("**/repro/reviewed/")
        _shot(page, f"pairs_reviewed_{name}")
        page.context.clear_cookies()
