"""The AKS, OCR, patch, hash and embedding stages end to end on real clips, and what the detail page shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from moderation.media.ingest import video_ingest
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video
from moderation.media.pipeline import video_process
from tests.factories import PolicyVersionFactory, UserFactory
from tests.module_rows import refuse_transactional, rows_for_the_module

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture(scope="class")
def speech_processed_once(speech_clip: Path, django_db_setup, django_db_blocker) -> Iterator[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """The speech clip uploaded by a moderator (not decided yet: open to its uploader) and processed by the whole
    pipeline under an active policy, once for the class's tests, which only read it (``tests/module_rows.py``): each
    processed the same clip the same way before. (video id, uploader id)."""

    def build() -> tuple[int, int]:
        PolicyVersionFactory()  # the active policy, whose keyword "wechat" scores the captioned frames
        uploader = UserFactory(role="moderator")
        video = video_ingest(path=speech_clip, title="deal", created_by=uploader)
        video_process(video_id=video.pk)
        return video.pk, uploader.pk

    with rows_for_the_module(django_db_blocker, build) as ids:
        yield ids


class TestTheSpeechClipProcessedOnce:
    @pytest.fixture
    def processed(self, request: pytest.FixtureRequest, speech_processed_once: tuple[int, int]) -> tuple[Video, User]:
        video_id, uploader_id = refuse_transactional(request, speech_processed_once)
        return Video.objects.get(pk=video_id), User.objects.get(pk=uploader_id)

    def test_offline_pipeline_scores_selects_reads_text_hashes_and_embeds(self, processed: tuple[Video, User]) -> None:
        _check_offline_pipeline(processed[0])

    def test_detail_page_draws_patches_with_citable_ids(self, processed: tuple[Video, User]) -> None:
        _check_detail_page(*processed)


def _check_offline_pipeline(video: Video) -> None:
    assert video.status == Video.Status.READY, video.error
    keyframes = list(video.keyframes.order_by("index"))
    assert video.keyframe_scorer.startswith("offline:ocr-keywords+visual-change")
    assert video.keyframe_selection == "adaptive" and video.patch_method == "ocr"
    assert sum(k.selected for k in keyframes) == min(8, len(keyframes))
    assert video.sampled_frames == 1 + min(8, len(keyframes))  # the cover plus the selected frames
    # The caption "Add me on WeChat" matches the policy keyword "wechat": those frames score high.
    assert max(k.score for k in keyframes) >= 0.7
    assert "wechat" in video.ocr_text.lower().replace(" ", "")
    assert all(k.ocr_done and k.width == 320 and k.height == 180 for k in keyframes)
    patches = Patch.objects.filter(keyframe__video=video)
    assert patches.exists() and set(patches.values_list("method", flat=True)) == {"ocr"}
    assert all(p.keyframe.selected for p in patches)
    assert all(len(k.pdq_hash) == 64 and k.pdq_quality is not None for k in keyframes)
    assert all(k.embedding is not None and len(k.embedding) == 512 for k in keyframes)
    assert video.frame_embedding_model == "offline:grey32x16"
    assert 1 <= len(video.pdq_signature) <= len(keyframes)
    assert video.pdq_signature[0]["t"] == 0.0 and len(video.pdq_signature[0]["hash"]) == 64
    assert video.text_embedding is not None and len(video.text_embedding) == 384


def test_rerunning_the_new_stages_duplicates_nothing(silent_clip: Path, policy_version) -> None:  # type: ignore[no-untyped-def]
    video = video_ingest(path=silent_clip, title="quiet")
    video_process(video_id=video.pk)
    counts = (OcrBox.objects.count(), Patch.objects.count(), Keyframe.objects.count())
    signature = Video.objects.get(pk=video.pk).pdq_signature
    assert counts[0] and counts[1]

    for stage in (Video.Stage.OCR, Video.Stage.SELECT, Video.Stage.PATCHES, Video.Stage.HASHES):
        Video.objects.filter(pk=video.pk).update(status=Video.Status.PROCESSING, stage=stage)
        video_process(video_id=video.pk)
        assert Video.objects.get(pk=video.pk).status == Video.Status.READY
        assert (OcrBox.objects.count(), Patch.objects.count(), Keyframe.objects.count()) == counts, stage
    assert Video.objects.get(pk=video.pk).pdq_signature == signature
    assert not TranscriptSegment.objects.exists()


def test_clip_scorer_and_vit_patches_by_setting(
    silent_clip: Path, tiny_clip: Path, tiny_vit: Path, settings, policy_version
) -> None:  # type: ignore[no-untyped-def]
    settings.KEYFRAME_SCORER, settings.KEYFRAME_CLIP_MODEL = "clip", str(tiny_clip)
    settings.PATCH_SALIENCY, settings.PATCH_VIT_MODEL, settings.PATCH_TOP_K = "vit", str(tiny_vit), 3
    settings.KEYFRAME_SELECTION, settings.KEYFRAME_SELECT_K = "bin_top", 2
    video = video_ingest(path=silent_clip, title="quiet")
    video_process(video_id=video.pk)
    video.refresh_from_db()

    assert video.status == Video.Status.READY, video.error
    assert video.keyframe_scorer.startswith(f"clip:{tiny_clip}") and video.keyframe_selection == "bin_top"
    assert video.frame_embedding_model == f"clip:{tiny_clip}"
    selected = list(video.keyframes.filter(selected=True))
    assert len(selected) == 2
    for kf in selected:
        patches = list(kf.patches.all())
        assert [p.method for p in patches] == ["vit"] * 3 and [p.rank for p in patches] == [0, 1, 2]
        assert all(p.x + p.w <= kf.width + 1 and p.y + p.h <= kf.height + 1 for p in patches)
    assert len(set(video.keyframes.values_list("score", flat=True))) > 1  # real per-frame scores


def test_a_bad_scorer_setting_fails_the_video_readably(silent_clip: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KEYFRAME_SCORER = "magic"
    video = video_ingest(path=silent_clip, title="quiet")
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and "Unknown KEYFRAME_SCORER 'magic'" in video.error


def _check_detail_page(video: Video, uploader: Any) -> None:
    from django.test import Client

    moderator = Client()
    moderator.force_login(uploader)  # the video is not decided (routed) yet: open to its uploader
    patches = list(Patch.objects.filter(keyframe__video=video))
    assert patches

    html = moderator.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()

    for p in patches:
        assert f'id="patch-{p.pk}"' in html
        assert f'<rect x="{p.x}" y="{p.y}" width="{p.w}" height="{p.h}"' in html
    assert "Scored by offline:" in html and 'id="selected-keyframes"' in html
