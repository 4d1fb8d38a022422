"""The header's "More" menu folds by the width there is (workbench.js ``navFit``), not past a fixed eight links: at
1440x900 an admin's bar holds every link that fits beside the brand and the user, at 1024x768 fewer, and on one
line at both; the menu holds the rest, in order. Before, the bar held the same seven links at any width (and
wrapped to two lines at 1024 px)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import SCREEN, shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]

ADMIN_LINKS = [
    "Videos", "Review queues", "Reproductions", "Tags", "Adjudications", "CoT corrections", "Tag2CoT", "Label Studio",
    "Policies", "Tag vocabulary", "Training", "Cascade", "Integrations", "Operations",
]  # fmt: skip

_HEADER = """() => {
  const nav = document.querySelector("header.topbar nav");
  const more = nav.querySelector("details[data-nav-more]");
  const who = document.querySelector("header.topbar .who").getBoundingClientRect();
  const shown = [...nav.querySelectorAll(":scope > a"), ...(more.hidden ? [] : [more.querySelector("summary")])];
  const boxes = shown.map((el) => el.getBoundingClientRect());
  return {
    bar: [...nav.querySelectorAll(":scope > a")].map((a) => a.textContent),
    more: more.hidden ? [] : [...more.querySelectorAll("li a")].map((a) => a.textContent),
    tops: [...boxes, who].map((b) => Math.round(b.top)),
    right: Math.max(...boxes.map((b) => b.right)),
    whoLeft: who.left,
  };
}"""


@pytest.mark.django_db(transaction=True)
def test_the_admins_header_folds_what_does_not_fit_its_one_line(page, make_user) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, make_user("admin").username, screen=True)
    seen = {}
    for name, size in (("1440x900", SCREEN), ("1024x768", {"width": 1024, "height": 768})):
        page.set_viewport_size(size)
        page.goto("/")
        page.wait_for_function("() => document.querySelector('header.topbar nav.nav-fit') !== null")
        header = page.evaluate(_HEADER)
        page.screenshot(path=str(shots_dir() / f"header-{name}.png"))
        assert header["bar"] + header["more"] == ADMIN_LINKS, header  # every link once, in order
        assert max(header["tops"]) - min(header["tops"]) < 10, header  # one line
        assert header["right"] <= header["whoLeft"], header  # nothing under the user's name
        seen[name] = header
    wide, narrow = seen["1440x900"], seen["1024x768"]
    assert len(wide["bar"]) > 7, wide  # the server's fold alone kept seven at any width
    assert len(narrow["bar"]) < len(wide["bar"]) and narrow["more"], narrow
    # Made wider again (a resize, no reload), the links come back out of the menu.
    page.set_viewport_size(SCREEN)
    page.wait_for_function(f"() => document.querySelectorAll('header.topbar nav > a').length === {len(wide['bar'])}")
    # Opened by keyboard, the menu shows its links.
    page.focus(".nav-more > summary")
    page.keyboard.press("Enter")
    page.locator("header.topbar").get_by_role("link", name=ADMIN_LINKS[-1]).wait_for(state="visible")
    page.screenshot(path=str(shots_dir() / "header-1440x900-more-open.png"))
