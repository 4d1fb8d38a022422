from __future__ import annotations

import pytest

from moderation.inference.services import decision_create_for_video
from moderation.models import Decision, ReviewTask, Video
from tests.factories import SegmentFactory, VideoFactory


@pytest.fixture
def private_deal_video(policy_version):  # type: ignore[no-untyped-def]
    video = VideoFactory(title="Cheap phones today")
    SegmentFactory(video=video, index=0, start=0.0, end=2.5, text="Hello friends, these phones are cheap.")
    SegmentFactory(video=video, index=1, start=2.5, end=5.0, text="Add me on WeChat for a private deal.")
    return video


def test_decision_cites_the_transcript_segment_that_carries_the_violation(private_deal_video):
    decision = decision_create_for_video(video_id=private_deal_video.pk)

    assert decision.label == "引导私下交易"
    assert decision.is_violation
    assert [s["key"] for s in decision.cot] == [
        "content_extraction",
        "analysis",
        "intermediate_check",
        "user_feedback",
        "final_judgment",
    ]
    analysis = decision.cot[1]
    assert "private deal" in analysis["text"].lower()
    cited = {e["ref"] for e in analysis["evidence"] if e["kind"] == "segment"}
    assert cited == {private_deal_video.segments.get(index=1).pk}
    assert "Add me on WeChat" in decision.cot[0]["text"]
    assert decision.policy_version.is_active
    assert decision.model_version.backend == "evidence_baseline"


def test_harmless_video_is_non_violative_and_queued_for_review(policy_version):
    video = VideoFactory(title="Making dumplings at home")
    SegmentFactory(video=video, index=0, text="Fold the dough carefully and steam for ten minutes.")

    decision = decision_create_for_video(video_id=video.pk)

    assert decision.label == policy_version.safe_label
    assert not decision.is_violation
    assert ReviewTask.objects.get(decision=decision).status == ReviewTask.Status.PENDING
    video.refresh_from_db()
    assert video.stage == Video.Stage.DONE


def test_rerunning_inference_does_not_duplicate_the_decision_or_task(private_deal_video):
    first = decision_create_for_video(video_id=private_deal_video.pk)
    second = decision_create_for_video(video_id=private_deal_video.pk)

    assert first.pk == second.pk
    assert Decision.objects.filter(video=private_deal_video).count() == 1
    assert ReviewTask.objects.filter(decision__video=private_deal_video).count() == 1


def test_latin_keywords_match_whole_words_only(policy_version):
    video = VideoFactory(title="The vortex of vxlan networking")  # contains "vx" inside words only
    decision = decision_create_for_video(video_id=video.pk)
    assert not decision.is_violation


def test_chinese_keywords_match_kuaimod_style_text(policy_version):
    video = VideoFactory(title="好物推荐", description="喜欢的加微信私聊，价格优惠")
    decision = decision_create_for_video(video_id=video.pk)
    assert decision.label == "引导私下交易"


def test_without_an_active_policy_the_task_records_a_readable_failure(db):
    from moderation.inference.tasks import run_inference

    video = VideoFactory()
    assert run_inference.run(video.pk) is None
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED
    assert "No policy applies to new videos" in video.error


def test_each_auto_applied_policy_decides_with_its_own_serving_model(policy_version):
    from moderation.inference.services import decisions_create_for_video, model_version_register
    from moderation.policies.models import Policy
    from moderation.policies.services import policy_seed_blm_guard

    blm = policy_seed_blm_guard()
    Policy.objects.filter(pk=blm.policy_id).update(auto_apply=True)
    other = model_version_register(name="baseline-for-blm", backend="evidence_baseline")
    Policy.objects.filter(pk=blm.policy_id).update(serving_model=other)
    video = VideoFactory(title="add me on wechat")

    decisions = decisions_create_for_video(video_id=video.pk)

    by_policy = {d.policy_version.policy.slug: d for d in decisions}
    assert set(by_policy) == {"kuaimod", blm.policy.slug}
    assert by_policy[blm.policy.slug].model_version == other
    assert by_policy["kuaimod"].model_version.name == "evidence-baseline-v1"
    assert ReviewTask.objects.filter(decision__video=video).count() == 2


def test_a_blm_guard_decision_records_its_scene_and_a_severity_the_type_allows(policy_version):
    from moderation.inference.services import decisions_create_for_video
    from moderation.policies.models import Policy
    from moderation.policies.services import policy_seed_blm_guard

    blm = policy_seed_blm_guard()
    Policy.objects.filter(pk=blm.policy_id).update(auto_apply=True)
    video = VideoFactory(title="加微信 vx 加我 私聊")

    decisions = {d.policy_version.policy.slug: d for d in decisions_create_for_video(video_id=video.pk)}

    blm_decision = decisions[blm.policy.slug]
    assert (blm_decision.label, blm_decision.scene) == ("站外引流", "诱导交易")
    assert blm_decision.severity in {"medium", "high"}  # the two this type allows
    kuaimod_decision = decisions["kuaimod"]
    assert kuaimod_decision.scene == "" and kuaimod_decision.severity == ""


def test_the_baseline_writes_each_finding_once_and_quotes_cleaned_on_screen_text():
    from moderation.inference.backends import ContentBundle, Segment
    from moderation.inference.backends.evidence import EvidenceBaseline, clean_ocr

    assert clean_ocr(["  ||| ~~ ", "Add  me on WeChat!!", "add me on wechat", "Add me", "x", "·-·", "VX: 12345"]) == [
        "Add me on WeChat!!",
        "VX: 12345",
    ]
    taxonomy = [
        {
            "key": "private",
            "tags": [
                {"key": "引导私下交易", "name": "Private deals", "keywords": ["wechat", "private deal", "add me"]},
                {"key": "引流", "name": "Traffic diversion", "keywords": ["wechat"]},
            ],
        }
    ]
    speech = "Add me on WeChat for a private deal."
    content = ContentBundle(
        title="",
        description="",
        uploader="",
        segments=[Segment(id=7, start=2.5, end=5.0, text=speech)],
        frames=[],
        ocr=["Add me on WeChat", "~~|=", "add me on wechat"],
    )
    cot = {s["key"]: s for s in EvidenceBaseline().decide(content, taxonomy, "正向").cot}

    analysis = cot["analysis"]["text"]
    # One sentence per passage: the speech segment and the (deduplicated) on-screen line.
    assert analysis.count(f"«{speech}»") == 1 and analysis.count("«Add me on WeChat»") == 1
    assert "'wechat', 'private deal', 'add me' of Private deals and Traffic diversion" in analysis
    assert [e["ref"] for e in cot["analysis"]["evidence"]] == [7]  # the segment, cited once
    assert "On-screen text: «Add me on WeChat»." in cot["content_extraction"]["text"]


def test_the_extraction_counts_one_speech_segment_as_one(policy_version):
    """The labeler's CoT screen read "Speech (1 segments, language en)"."""
    video = VideoFactory(title="Tomato soup")
    SegmentFactory(video=video, index=0, text="Chop the onions and simmer for twenty minutes.")

    decision = decision_create_for_video(video_id=video.pk)

    assert "Speech (1 segment" in decision.cot[0]["text"] and "1 segments" not in decision.cot[0]["text"]


@pytest.mark.parametrize(
    ("keyword", "said"),
    [
        ("wech\u202eat", "Add me on WeChat for the price."),  # a control inside the policy's keyword
        ("wechat", "Add me on We\u2066Ch\u2069at for the price."),  # isolates splitting the word in the video
        ("加\u200f微信", "喜欢的加\u202a微\u202c信私聊"),  # on both sides, in a Chinese caption
    ],
)
def test_keywords_match_whatever_invisible_bidi_controls_either_side_holds(keyword, said):
    """A keyword pasted with an invisible bidi control, or a caption that hides one inside a word, matched nothing:
    the baseline called such a video harmless. Matching reads both without them (``shown_text``)."""
    from moderation.inference.backends import ContentBundle, Segment
    from moderation.inference.backends.evidence import EvidenceBaseline

    taxonomy = [{"key": "private", "tags": [{"key": "引导私下交易", "name": "Private deals", "keywords": [keyword]}]}]
    content = ContentBundle(
        title="",
        description="",
        uploader="",
        segments=[Segment(id=3, start=0.0, end=4.0, text=said)],
        frames=[],
        ocr=[],
    )

    result = EvidenceBaseline().decide(content, taxonomy, "正向")

    assert (result.is_violation, result.label) == (True, "引导私下交易")
