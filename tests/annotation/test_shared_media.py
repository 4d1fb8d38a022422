"""The annotation screens show a video through the review screen's own media panels."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotation.models import Adjudication, Tag2CotTask
from moderation.media.models import Keyframe, Patch
from moderation.review.services import review_claim_next
from tests.factories import ReviewTaskFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _media_panels(html: str) -> str:
    """The ``<div id="media">`` element of a page, with per-response noise (CSRF token, return path) blanked."""
    start = html.index('<div id="media"')
    depth, pos = 0, start
    for tag in re.finditer(r"<div\b|</div>", html[start:]):
        depth += 1 if tag.group() != "</div>" else -1
        if depth == 0:
            pos = start + tag.end()
            break
    block = html[start:pos]
    block = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "CSRF", block)
    return re.sub(r'name="next" value="[^"]*"', "NEXT", block)


def test_correction_tag2cot_and_adjudication_screens_reuse_the_review_media_panels(policy_version, make_user):
    task = ReviewTaskFactory(decision__policy_version=policy_version, decision__label="正向")
    decision, video = task.decision, task.decision.video
    type(video).objects.filter(pk=video.pk).update(ocr_text="scan the code | add me", comments=["cheap!"])
    Keyframe.objects.create(video=video, index=0, timestamp=0.5, image="keyframes/a.jpg", ocr_text="scan the code")
    kf = Keyframe.objects.create(
        video=video, index=1, timestamp=3.0, image="keyframes/b.jpg", selected=True, width=64, height=36
    )
    patch = Patch.objects.create(keyframe=kf, rank=0, method="ocr", x=1, y=2, w=10, h=5, score=0.9)
    SegmentFactory(video=video, index=0, start=1.5, end=3.0, text="add me on wechat")
    admin = make_user("admin")  # may review, correct CoT and adjudicate
    assert review_claim_next(user=admin).pk == task.pk
    from django.test import Client

    client = Client()
    client.force_login(admin)
    review = _media_panels(client.get(reverse("moderation:review_task", args=[task.pk])).content.decode())
    for part in (f'id="frame-{kf.pk}"', f'id="patch-{patch.pk}"', "add me on wechat", "scan the code", "cheap!"):
        assert part in review

    tag2cot = Tag2CotTask.objects.create(video=video, decision=decision, policy_version=policy_version,
                                         target_label="正向")  # fmt: skip
    adjudication = Adjudication.objects.create(video=video, decision=decision, kind="reported_pass", reason="r")
    for url in (
        reverse("annotation:correction_edit", args=[decision.pk]),
        reverse("annotation:tag2cot_write", args=[tag2cot.pk]),
        reverse("annotation:adjudication_detail", args=[adjudication.pk]),
    ):
        assert _media_panels(client.get(url).content.decode()) == review, url


def test_an_imported_items_speech_is_shown_where_its_reasoning_is_corrected_and_on_its_page(
    tmp_path, policy_version, client_as
):
    """A KuaiMod record's speech comes as text without timings; the model reads it as the item's speech and
    quotes it. The correction screen's transcript said "No speech transcribed" (and the video page "No speech
    was found"), so a labeler could not check the quote against what was said."""
    from moderation.inference.kuaimod import kuaimod_import
    from moderation.media.models import Video
    from tests.factories import DecisionFactory
    from tests.moderation.inference.kuaimod_samples import kuaimod_line

    path = tmp_path / "k.jsonl"
    path.write_text(kuaimod_line("077", "引导私下交易", "私聊", asr="大家好 | 加我微信 | | 私聊发价格") + "\n")
    assert kuaimod_import(path=path, policy_version=policy_version).created == 1
    video = Video.objects.get(external_id="kuaimod:077")
    decision = DecisionFactory(video=video, policy_version=policy_version)  # decided: open to the labeler

    html = client_as("labeler").get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()
    media = _media_panels(html)
    assert "No speech transcribed" not in media
    assert "Transcript <small>(3)</small>" in media
    # The index counts every "|" part (the empty one too), as the tags panel's speech evidence does.
    for index, line in ((0, "大家好"), (1, "加我微信"), (3, "私聊发价格")):
        assert f'id="seg-{index}">{line}</li>' in media

    page = client_as("admin").get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    assert "No speech was found" not in page
    assert 'id="seg-1">加我微信</li>' in page
