"""The path a fresh install walks: the demo vocabulary, each demo clip's text decided by the serving
model, the ``video_decided`` hand-off queuing candidate generation, and the clip's suggestions with
text evidence (the tags queue's input). Real encoder, real database, tasks run in-process."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from moderation.inference.tasks import run_inference
from moderation.media.demo import DEMO_SCRIPTS
from moderation.tagging.models import TagCandidate, TagSuggestion
from moderation.tagging.services import _VOCAB_CACHE, tags_embed_missing
from moderation.tagging.tasks import generate_tag_candidates
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


def test_demo_clips_get_candidates_after_they_are_decided(policy_version, encode, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    # Two clips (a flagged one and a harmless one) keep it to seconds: each costs an encoder call;
    # test_vocabulary checks that every clip's text names a demo tag.
    clips = [c for c in DEMO_SCRIPTS if c.problem][:1] + [c for c in DEMO_SCRIPTS if not c.problem][:1]
    assert len(clips) == 2
    _VOCAB_CACHE.clear()
    call_command("import_tags", demo=True, stdout=StringIO())
    assert tags_embed_missing(encode=encode) == 30
    for clip in clips:
        video = VideoFactory(title=clip.title, asr_text=clip.speech, ocr_text=clip.on_screen, file="")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert run_inference.run(video.pk) is not None  # decided
        queued = [cb.args[0] for cb in callbacks if getattr(cb, "args", None)]
        assert "moderation.tagging.tasks.generate_tag_candidates" in queued, clip.slug
        assert generate_tag_candidates.run(video.pk) > 0, clip.slug
        suggestions = TagSuggestion.objects.filter(video=video)
        assert suggestions.exists()
        text = TagCandidate.objects.filter(video=video, source="text")
        assert text.exists(), f"{clip.slug}: no tag named in its text"
        assert all(c.evidence and c.evidence[0]["match"] for c in text)
    _VOCAB_CACHE.clear()
