"""The pair screen in a real headless Chromium, as a moderator works it: both players and the keyframe strips."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from moderation.media.models import Keyframe
from moderation.reproduction.models import ReproCandidate
from moderation.reproduction.services import pair_claim_next
from tests.browser import conftest as browser_conftest
from tests.browser.test_review_browser import _login
from tests.factories import DecidedVideoFactory
from workbench import storage

CHROMIUM = browser_conftest.CHROMIUM
browser = browser_conftest.browser  # the same Chromium and page fixtures as the review browser tests
page = browser_conftest.page

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
    _login(page, moderator.username)
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
    page.wait_for_function("Math.abs(document.querySelector('video[data-pair-right]').currentTime - 2.0) < 0.05")
    assert abs(_times(page)[0] - 1.5) < 0.05
    earlier.nth(0).click()  # 0.0 s: before the later upload starts, so the earlier one alone goes there
    page.wait_for_function("document.querySelector('video[data-pair-right]').currentTime < 0.05")
    assert abs(_times(page)[0] - 1.5) < 0.05
    page.locator("[data-pair-seek]").last.click()  # the later upload's own keyframes still lead
    page.wait_for_function("Math.abs(document.querySelector('video[data-pair-left]').currentTime - 3.0) < 0.05")
    page.wait_for_function("Math.abs(document.querySelector('video[data-pair-right]').currentTime - 3.5) < 0.05")
