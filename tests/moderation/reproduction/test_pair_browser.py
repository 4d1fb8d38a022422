"""The pair screen in a real headless Chromium, as a moderator works it: both players and the keyframe strips."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moderation.media.models import Keyframe
from moderation.reproduction.models import ReproCandidate
from moderation.reproduction.services import pair_claim_next
from tests.browser import conftest as browser_conftest
from tests.browser.signin import sign_in
from tests.factories import DecidedVideoFactory
from workbench import storage

CHROMIUM = browser_conftest.CHROMIUM


@pytest.fixture
def page(browser, live_server):  # type: ignore[no-untyped-def]
    """The review browser tests' page, with the Content-Security-Policy not enforced: these tests hand each player its
    file as a blob: URL (the test server's media answers do not let Chromium seek), which the policy's media-src
    refuses, as it should. The pair screen itself is checked under the policy in tests/browser/test_csp_browser.py."""
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for this module's tests, each in its own context (``page``)."""
    with browser_conftest.chromium_launched() as chromium:
        yield chromium


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


def _clip(path: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "4",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
         str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def _times(page) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "[document.querySelector('video[data-pair-left]').currentTime,"
        " document.querySelector('video[data-pair-right]').currentTime]"
    )


@pytest.mark.django_db(transaction=True)
def test_an_earlier_uploads_keyframe_seeks_both_players_to_its_moment(page, make_user, tmp_path):  # type: ignore[no-untyped-def]
    """Walked in Chromium: the later upload's keyframes seek the players, but the earlier upload's were buttons that
    did nothing when clicked."""
    from PIL import Image

    videos = []
    for side in ("earlier", "later"):
        name = storage.store_file(_clip(tmp_path / f"{side}.mp4"), f"videos/2026/12/{side}.mp4")
        videos.append(DecidedVideoFactory(title=side, file=name, duration=4.0))
    original, copy = videos
    for video in videos:
        for i in range(4):
            Image.new("RGB", (64, 36), (40 * i, 80, 160)).save(tmp_path / f"{video.pk}-{i}.jpg", "JPEG")
            image = storage.store_file(tmp_path / f"{video.pk}-{i}.jpg", f"keyframes/{video.pk}/00000{i}.jpg")
            Keyframe.objects.create(video=video, index=i, timestamp=float(i), image=image, width=64, height=36)
    # The earlier upload's second t + 0.5 is the later upload's second t.
    pair = ReproCandidate.objects.create(video=copy, original=original, score=0.9, offset=0.5)
    moderator = make_user("moderator")
    assert pair_claim_next(user=moderator) == pair
    sign_in(page, moderator.username)
    page.goto(f"/repro/{pair.pk}/")
    # The test server's media answers do not let Chromium seek (the live app's do, walked): each player gets its
    # file's bytes as a blob, which seeks; the screen's own script drives the same two elements.
    page.evaluate(
        """() => Promise.all([...document.querySelectorAll('video')].map(async (v) => {
            const blob = await (await fetch(v.src)).blob();
            v.src = URL.createObjectURL(blob);
            await new Promise((ok) => v.addEventListener('loadedmetadata', ok, {once: true}));
        }))"""
    )

    earlier = page.locator("[data-pair-seek-original]")
    assert earlier.count() == 4
    earlier.nth(2).click()  # the earlier upload at 2.0 s: the later one at 1.5 s, the earlier following it
    page.wait_for_function("() => Math.abs(document.querySelector('video[data-pair-right]').currentTime - 2.0) < 0.05")
    assert abs(_times(page)[0] - 1.5) < 0.05
    earlier.nth(0).click()  # 0.0 s: before the later upload starts, so the earlier one alone goes there
    page.wait_for_function("() => document.querySelector('video[data-pair-right]').currentTime < 0.05")
    assert abs(_times(page)[0] - 1.5) < 0.05
    page.locator("[data-pair-seek]").last.click()  # the later upload's own keyframes still lead
    page.wait_for_function("() => Math.abs(document.querySelector('video[data-pair-left]').currentTime - 3.0) < 0.05")
    page.wait_for_function("() => Math.abs(document.querySelector('video[data-pair-right]').currentTime - 3.5) < 0.05")


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("SHOTS_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _pair_with_media(tmp_path: Path, *, copy_file: bool, original_file: bool) -> ReproCandidate:
    """A pair of two 4-second uploads (the earlier's t + 0.5 is the later's t), four keyframes each, a file only
    where asked."""
    from PIL import Image

    videos = []
    for side, has_file in (("earlier", original_file), ("later", copy_file)):
        name = storage.store_file(_clip(tmp_path / f"{side}.mp4"), f"videos/2026/12/{side}.mp4") if has_file else ""
        videos.append(DecidedVideoFactory(title=f"The {side} upload", file=name, duration=4.0))
    original, copy = videos
    for video in videos:
        for i in range(4):
            Image.new("RGB", (64, 36), (40 * i, 80, 160)).save(tmp_path / f"{video.pk}-{i}.jpg", "JPEG")
            image = storage.store_file(tmp_path / f"{video.pk}-{i}.jpg", f"keyframes/{video.pk}/00000{i}.jpg")
            Keyframe.objects.create(video=video, index=i, timestamp=float(i), image=image, width=64, height=36)
    matches = [{"t": float(i), "t_orig": i + 0.5, "d": 6} for i in range(3)]
    evidence = {"alignment": {"offset": 0.5, "scale": 1.0, "mirrored": False, "coverage_copy": 0.75,
                              "coverage_original": 0.75, "matches": matches}}  # fmt: skip
    return ReproCandidate.objects.create(video=copy, original=original, score=0.9, offset=0.5, evidence=evidence)


def _blob_players(page) -> None:  # type: ignore[no-untyped-def]
    """The test server's media answers do not let Chromium seek: each player gets its file's bytes as a blob."""
    page.evaluate(
        """() => Promise.all([...document.querySelectorAll('video')].map(async (v) => {
            const blob = await (await fetch(v.src)).blob();
            v.src = URL.createObjectURL(blob);
            await new Promise((ok) => v.addEventListener('loadedmetadata', ok, {once: true}));
        }))"""
    )


@pytest.mark.django_db(transaction=True)
def test_the_verdict_buttons_are_in_view_at_1440x900(page, make_user, tmp_path):  # type: ignore[no-untyped-def]
    """Walked at 1440x900: the verdict panel sat under the players, the matched keyframes and the scores, below the
    fold; a moderator scrolled for every pair. The buttons (and their keys) are in view on arrival, and stay in view
    while the keyframes are scrolled through."""
    pair = _pair_with_media(tmp_path, copy_file=True, original_file=True)
    moderator = make_user("moderator")
    assert pair_claim_next(user=moderator) == pair
    sign_in(page, moderator.username, screen=True)
    page.goto(f"/repro/{pair.pk}/")
    for key in ("p", "d", "u"):
        button = page.locator(f'#verdict button[data-hotkey="{key}"]')
        box = button.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, (key, box)
    page.screenshot(path=str(_shots(tmp_path) / "pair-verdict-in-view.png"))
    page.mouse.wheel(0, 2000)
    page.wait_for_function("() => window.scrollY > 0")
    box = page.locator('#verdict button[data-hotkey="u"]').bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, box
    page.screenshot(path=str(_shots(tmp_path) / "pair-verdict-scrolled.png"))
    with page.expect_navigation():
        page.keyboard.press("d")  # the keys are unchanged
    pair.refresh_from_db()
    assert pair.review.verdict == "derivative"


@pytest.mark.django_db(transaction=True)
def test_the_keyframes_seek_the_one_video_that_has_media(page, make_user, tmp_path):  # type: ignore[no-untyped-def]
    """Walked: with only the earlier upload's file, every keyframe button did nothing (the script wanted two
    players). Now they seek the player there is, at the matched moment, and the screen says the other has none."""
    pair = _pair_with_media(tmp_path, copy_file=False, original_file=True)
    moderator = make_user("moderator")
    assert pair_claim_next(user=moderator) == pair
    sign_in(page, moderator.username, screen=True)
    page.goto(f"/repro/{pair.pk}/")
    assert page.locator("video").count() == 1
    note = page.locator("#no-sync").inner_text()
    assert "The later upload has no media file" in note and "seek the earlier upload alone" in note, note
    _blob_players(page)
    right = "document.querySelector('video[data-pair-right]').currentTime"
    page.locator("[data-pair-seek-original]").nth(2).click()  # the earlier upload's own 2.0 s
    page.wait_for_function(f"() => Math.abs({right} - 2.0) < 0.05")
    page.locator("[data-pair-seek]").nth(0).click()  # a matched row: the later upload's 0.0 s is the earlier's 0.5 s
    page.wait_for_function(f"() => Math.abs({right} - 0.5) < 0.05")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(_shots(tmp_path) / "pair-only-earlier-has-media.png"))


@pytest.mark.django_db(transaction=True)
def test_with_only_the_later_uploads_media_its_keyframes_and_the_earliers_seek_it(page, make_user, tmp_path):  # type: ignore[no-untyped-def]
    pair = _pair_with_media(tmp_path, copy_file=True, original_file=False)
    moderator = make_user("moderator")
    assert pair_claim_next(user=moderator) == pair
    sign_in(page, moderator.username)
    page.goto(f"/repro/{pair.pk}/")
    assert "The earlier upload has no media file" in page.locator("#no-sync").inner_text()
    _blob_players(page)
    left = "document.querySelector('video[data-pair-left]').currentTime"
    page.locator("[data-pair-seek-original]").nth(2).click()  # the earlier's 2.0 s is the later's 1.5 s
    page.wait_for_function(f"() => Math.abs({left} - 1.5) < 0.05")
    page.locator("[data-pair-seek]").last.click()
    page.wait_for_function(f"() => Math.abs({left} - 3.0) < 0.05")
