"""Speech imported as text (a KuaiMod record's ASR field) has no timings: it is recorded as time unknown, never as a
fake 0.0 s, so the prompt tags none of its lines ``[t=…]`` and the review screen's evidence names the line it quotes
without a seek to 0. A processed video's real timings are untouched: its prompt is byte for byte what it was."""

from __future__ import annotations

import re

from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from moderation.inference.backends.evidence import EvidenceBaseline
from moderation.inference.kuaimod import kuaimod_bundle, kuaimod_import, kuaimod_read
from moderation.inference.models import Decision
from moderation.inference.prompts import build_prompt
from moderation.inference.services import content_bundle_for
from moderation.media.models import Keyframe, Video
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy
from moderation.review.models import ReviewTask
from moderation.review.services import review_claim_next
from tests.factories import DecisionFactory, ReviewTaskFactory, SegmentFactory, VideoFactory
from tests.moderation.inference.kuaimod_samples import kuaimod_line

# The prompt's item part for the processed video below, as built before speech could be untimed (commit a1230eb).
PROCESSED_USER_PROMPT = """Keyframes shown (in order): frame:{k0} at 0s, frame:{k2} at 31s
<<<UNTRUSTED title>>>
Cake day
<<<END UNTRUSTED>>>
<<<UNTRUSTED description>>>
Whipping cream
<<<END UNTRUSTED>>>
<<<UNTRUSTED on-screen text>>>
Step 1  |  whisk
<<<END UNTRUSTED>>>
<<<UNTRUSTED speech transcript>>>
[t=0.0s] hello there
[t=2.2s] add me on WeChat
[t=61.0s] bye
<<<END UNTRUSTED>>>
<<<UNTRUSTED comments>>>
(empty)
<<<END UNTRUSTED>>>
User-feedback statistics: no user feedback recorded"""


def test_a_processed_videos_prompt_is_unchanged_byte_for_byte(db) -> None:
    video = VideoFactory(title="Cake day", description="Whipping cream", ocr_text="Step 1 | whisk")
    for i, (start, text) in enumerate([(0.0, "hello there"), (2.25, " add me on WeChat "), (61.04, "bye")]):
        SegmentFactory(video=video, index=i, start=start, end=start + 1, text=text)
    frames = [
        Keyframe.objects.create(video=video, index=i, timestamp=t, selected=selected)
        for i, (t, selected) in enumerate([(0.0, True), (12.6, False), (30.6, True)])
    ]

    prompt = build_prompt(content_bundle_for(video), taxonomy=kuaimod_taxonomy(), safe_label=SAFE_LABEL)

    assert prompt.user == PROCESSED_USER_PROMPT.format(k0=frames[0].pk, k2=frames[2].pk)


def _imported(tmp_path, asr: str) -> tuple[Video, object]:  # type: ignore[no-untyped-def]
    path = tmp_path / "k.jsonl"
    path.write_text(kuaimod_line("077", "引导私下交易", "周末闲聊", asr=asr) + "\n", encoding="utf-8")
    kuaimod_import(path=path)
    [record] = kuaimod_read(path).records
    return Video.objects.get(external_id=record.external_id), record


def test_an_imported_records_speech_is_recorded_without_a_time_and_prompted_without_a_tag(db, tmp_path) -> None:
    video, record = _imported(tmp_path, asr="大家好 | 加我微信 | | 私聊发价格")

    bundle = content_bundle_for(video)
    assert [(s.start, s.end, s.index, s.text.strip()) for s in bundle.segments] == [
        (None, None, 0, "大家好"),
        (None, None, 1, "加我微信"),
        (None, None, 3, "私聊发价格"),
    ]  # time unknown, never 0.0 s; the index counts every "|" part, as the screens' seg-N do
    prompt = build_prompt(bundle, taxonomy=kuaimod_taxonomy(), safe_label=SAFE_LABEL)
    assert "<<<UNTRUSTED speech transcript>>>\n大家好\n加我微信\n私聊发价格\n<<<END UNTRUSTED>>>" in prompt.user
    assert "[t=" not in prompt.user
    # Evaluation reads the record, training and serving the video: the same prompt.
    assert build_prompt(kuaimod_bundle(record), taxonomy=kuaimod_taxonomy(), safe_label=SAFE_LABEL) == prompt

    analysis = EvidenceBaseline().decide(bundle, kuaimod_taxonomy(), SAFE_LABEL).cot[1]
    assert analysis["evidence"] == [
        {"kind": "speech", "ref": 1, "label": "speech «加我»"},
        {"kind": "speech", "ref": 3, "label": "speech «私聊»"},
    ]
    assert "The speech says «加我微信»" in analysis["text"] and "at 0.0s" not in analysis["text"]


def _review_screen(video: Video, cot: list, policy_version, make_user) -> str:  # type: ignore[no-untyped-def]
    decision = DecisionFactory(
        video=video, policy_version=policy_version, label="引导私下交易", is_violation=True, cot=cot
    )
    task = ReviewTaskFactory(decision=decision)
    admin = make_user("admin")
    assert review_claim_next(user=admin).pk == task.pk
    client = Client()
    client.force_login(admin)
    return client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()


def test_the_review_screen_links_untimed_speech_evidence_to_its_line_without_a_time(
    db, tmp_path, policy_version, make_user
) -> None:
    """The analysis stage's evidence read "0.0s «加我» @ 0.0s" and seeked the player to 0 (a text-only item has no
    player to seek); it now names the line it quotes and links to it in the transcript panel."""
    video, _ = _imported(tmp_path, asr="大家好 | 加我微信 | | 私聊发价格")
    cot = EvidenceBaseline().decide(content_bundle_for(video), policy_version.taxonomy, policy_version.safe_label).cot

    html = _review_screen(video, cot, policy_version, make_user)

    assert '<a href="#seg-1" class="ev-speech">speech «加我»</a>' in html
    assert '<a href="#seg-3" class="ev-speech">speech «私聊»</a>' in html
    assert 'id="seg-1">加我微信</li>' in html and 'id="seg-3">私聊发价格</li>' in html  # where the links land
    assert "@ 0.0s" not in html and "0.0s «" not in html
    assert not re.search(r'class="ev-[a-z]+"[^>]*data-seek|data-seek="[^"]*"[^>]*class="ev-', html)


def test_decisions_made_before_keep_their_evidence_but_lose_the_made_up_time(db, tmp_path, policy_version, make_user):
    """Decisions already made cite the imported speech as segment 0 at 0.0 s (no stored segment has id 0): shown as
    speech, with no time and no seek."""
    video, _ = _imported(tmp_path, asr="加我微信")
    cot = [
        {"key": "analysis", "title": "Analysis", "text": "The speech at 0.0s says «加我微信».", "evidence": [
            {"kind": "segment", "ref": 0, "label": "0.0s «加我»", "t": 0.0},
        ]},
    ]  # fmt: skip

    html = _review_screen(video, cot, policy_version, make_user)

    assert '<span class="ev-segment">speech «加我»</span>' in html
    assert "@ 0.0s" not in html and 'data-seek="0' not in html


_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def test_timed_evidence_writes_its_time_once(db, policy_version, make_user) -> None:  # type: ignore[no-untyped-def]
    """The CoT evidence read "2.3s «wechat» @ 2.3s" and "frame 31s @ 30.6s": the builder put the time in the label
    and the screen wrote it again. Labels now carry none, and decisions recorded before lose their copy."""
    video = VideoFactory(title="Cake day")
    SegmentFactory(video=video, index=0, start=2.25, end=3.25, text="add me on wechat")
    frame = Keyframe(video=video, index=0, timestamp=30.6, selected=True)
    frame.image.save(f"kf-{video.pk}.png", ContentFile(_PNG), save=False)
    frame.save()
    cot = EvidenceBaseline().decide(content_bundle_for(video), policy_version.taxonomy, policy_version.safe_label).cot
    labels = [ev["label"] for stage in cot for ev in stage["evidence"]]
    assert "frame" in labels and any(label.startswith("«") for label in labels), labels
    assert not any(re.search(r"\d+(\.\d+)?s", label) for label in labels), labels

    html = _review_screen(video, cot, policy_version, make_user)
    assert re.search(r'class="ev-segment">«[^»]+» @ 2\.3s</a>', html)
    assert f'data-frame="{frame.pk}" data-seek="30.6" class="ev-keyframe">frame @ 30.6s</a>' in html

    before = [
        {"key": "analysis", "title": "Analysis", "text": "…", "evidence": [
            {"kind": "segment", "ref": 7, "label": "2.3s «wechat»", "t": 2.25},
            {"kind": "keyframe", "ref": frame.pk, "label": "frame 31s", "t": 30.6},
            {"kind": "time", "ref": None, "label": "12.0s", "t": 12.0},
        ]},
    ]  # fmt: skip
    decision = Decision.objects.get(video=video)
    decision.cot = before
    decision.save(update_fields=["cot"])
    task = ReviewTask.objects.get(decision=decision)
    client = Client()
    client.force_login(task.claimed_by)
    html = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert 'class="ev-segment">«wechat» @ 2.3s</a>' in html
    assert 'class="ev-keyframe">frame @ 30.6s</a>' in html
    assert 'class="ev-time">12.0s</a>' in html
    assert not re.search(r"\d\.\ds «|s @ ", html.replace("» @ ", "").replace("frame @ ", ""))
