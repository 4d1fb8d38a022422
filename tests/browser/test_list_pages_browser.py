"""The lists paged by ``WindowPaginator`` in Chromium at 1440x900: past the count's cap each pager says "N+" and
offers no last page, "next" still walks on, and the last page reached counts exactly again. ``WORKBENCH_SHOTS``
(a folder): each screen is saved there too."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.workbench.test_pagination_screens import build_world
from workbench import pagination

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.fixture
def world() -> dict[str, Any]:
    """The pagination screens' library and readers, built for this test: it commits them (a live server reads them),
    so ``test_pagination_screens``' module-wide ``world`` (one rolled-back transaction) cannot serve it."""
    return build_world()


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("WORKBENCH_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_capped_lists_say_how_far_they_counted(page, world: dict[str, Any], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pagination, "COUNT_CAP", 5)
    monkeypatch.setattr("moderation.reproduction.views.PAIRS_PER_PAGE", 2)
    monkeypatch.setattr("annotation.views.LIST_PAGE", 2)
    monkeypatch.setattr("moderation.tagging.selectors.SIGHTINGS_PAGE", 2)
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, world["readers"]["outsider"].username)  # a moderator who sees part of the library
    pairs = reverse("moderation:video_repro_pairs", args=[world["hub"].pk])
    screens = {
        "pair_queue": (reverse("moderation:repro_queue"), "nav.pager", "page 1 (5+ pairs waiting)"),
        "pairs_reviewed": (reverse("moderation:repro_reviewed"), "nav.pager", "page 1 (5+ reviewed pairs)"),
        "video_pairs_copies": (pairs + "?side=copies", "nav.pager", "page 1 (5+ pairs)"),
        "corrections": (reverse("annotation:correction_list"), "main", "page 1 (5+ decisions)"),
        "tag2cot_all": (reverse("annotation:tag2cot_list") + "?status=all", "nav.pager", "page 1 (5+ tasks)"),
        "adjudications_all": (
            reverse("annotation:adjudication_list") + "?status=all",
            "nav.pager",
            "page 1 (5+ adjudications)",
        ),
        "sightings": (
            reverse("moderation:tag_proposal_sightings", args=[world["proposal"].pk]),
            "nav.pager",
            "videos 1–2 of 5+",
        ),
    }
    for name, (url, where, words) in screens.items():
        page.goto(url)
        pager = page.locator(where).last
        assert words in pager.inner_text(), (name, pager.inner_text())
        assert page.get_by_role("link", name="last »").count() == 0, name
        assert pager.is_visible(), name
        _shot(page, f"{name}_capped")
    # "next" walks on past the cap; the last page, once reached, is counted exactly.
    page.goto(screens["pairs_reviewed"][0])
    page.get_by_role("link", name="next →").click()
    assert "page 2 (5+ reviewed pairs)" in page.locator("nav.pager").inner_text()
    _shot(page, "pairs_reviewed_page2_capped")
    page.goto(screens["pairs_reviewed"][0] + "?page=999")
    last = page.locator("nav.pager").inner_text()
    assert " of " in last and "+" not in last and page.get_by_role("link", name="next →").count() == 0
    _shot(page, "pairs_reviewed_last_exact")
    # Under the cap: as Django's paginator drew it ("page 1 of N (M …)", a last page).
    monkeypatch.setattr(pagination, "COUNT_CAP", 1000)
    page.goto(screens["tag2cot_all"][0])
    assert "page 1 of" in page.locator("nav.pager").inner_text()
    assert page.get_by_role("link", name="last »").count() == 1
    _shot(page, "tag2cot_all_exact")
    page.goto(screens["corrections"][0])
    _shot(page, "corrections_exact")
