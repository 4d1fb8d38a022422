"""The candidate sources and features added for ranking quality: hashtags, the title's embedding, the
related source (co-occurrence and tag-space neighbours of text hits). Pure functions over small
hand-made vocabularies: no database, no encoder (milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.tagging import ranking
from moderation.tagging.text import find_tag_names, in_hashtag, segment_texts, split_segments, title_text

NAMES = ["龙虾", "美食", "海鲜", "搞笑", "汽车", "风景", "旅游"]


def _vocab(cooccur: dict[int, dict[int, float]] | None = None) -> ranking.Vocabulary:
    ids = list(range(1, len(NAMES) + 1))
    # Embeddings by hand: 龙虾 ≈ 海鲜 (close), 美食 a little further, the rest orthogonal.
    emb = np.zeros((len(NAMES), 8), dtype=np.float32)
    emb[0, 0] = 1.0
    emb[2, [0, 1]] = [0.9, 0.436]
    emb[1, [0, 2]] = [0.6, 0.8]
    for i in range(3, len(NAMES)):
        emb[i, i] = 1.0
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return ranking.Vocabulary(
        ids, NAMES, {n: i for n, i in zip(NAMES, ids, strict=True)}, emb, 2, cooccur=cooccur or {}
    )


def test_hashtags_are_told_apart_from_plain_mentions() -> None:
    assert in_hashtag("今天 #搞笑日常 真好", 4)
    assert not in_hashtag("今天 #日常 搞笑", 8)
    assert not in_hashtag("搞笑", 0)
    segs = split_segments(title="#搞笑日常 这也太搞笑了 #风景")
    hits = find_tag_names(segs, {"搞笑": 4, "风景": 6}, 2)
    assert hits[4].fields == {"title": 2} and hits[4].hashtags == 1
    assert hits[6].hashtags == 1


def test_title_text_skips_exporter_placeholders() -> None:
    assert title_text(split_segments(title="null", ocr="字幕")) == ""
    assert title_text(split_segments(title="周末钓龙虾", ocr="字幕")) == "周末钓龙虾"
    assert title_text(split_segments(title="", asr="说话")) == ""


def test_cooccurrence_is_shrunk_conditional_frequency() -> None:
    table = ranking.cooccurrence([[1, 2], [1, 2, 3], [1], [2, 2]])
    # 龙虾 (1) on 3 videos, with 美食 (2) on 2 of them: 2 / (3 + 1).
    assert table[1][2] == pytest.approx(0.5)
    assert table[2][1] == pytest.approx(2 / 4)  # 美食 on 3 videos (a repeated tag counts once)
    assert table[3] == {1: 0.5, 2: 0.5}
    assert 1 not in table[1]


def test_related_source_proposes_co_tags_and_neighbours_of_text_hits() -> None:
    vocab = _vocab(cooccur={1: {2: 0.6, 5: 0.2}})
    segs = split_segments(title="今天吃龙虾")
    cands = ranking.generate(segments=segs, vector=None, vocab=vocab)
    food, seafood, car = cands[2], cands[3], cands[5]
    assert "related" in food.sources and food.features["related_cooccur"] == pytest.approx(0.6)
    assert food.evidence[0]["from"] == "龙虾" and food.evidence[0]["how"] == "co-occurs"
    assert ranking.evidence_of(food, "related") == food.evidence and ranking.evidence_of(food, "text") == []
    # 海鲜 comes from tag space (no co-occurrence), with its cosine to 龙虾 as a feature.
    assert "related" in seafood.sources and seafood.features["related_similar"] == pytest.approx(0.9, abs=0.01)
    assert seafood.features["related_similar"] > food.features["related_similar"] > car.features["related_similar"]
    # The text hit itself keeps its text evidence only, and is not its own relative.
    assert cands[1].sources == ["text"] and cands[1].features["related_similar"] == 0.0
    off = ranking.generate(segments=segs, vector=None, vocab=vocab, options=ranking.Options(related=False))
    assert 2 not in off and 3 not in off


def test_title_embedding_adds_candidates_and_features() -> None:
    vocab = _vocab()
    title_vector = np.zeros(8, dtype=np.float32)
    title_vector[6] = 1.0  # the title reads like 旅游 (id 7)
    vector = np.zeros(8, dtype=np.float32)
    vector[3] = 1.0  # the whole text like 搞笑 (id 4)
    segs = split_segments(title="出去走走")
    cands = ranking.generate(segments=segs, vector=vector, vocab=vocab, title_vector=title_vector)
    assert cands[7].features["title_embedding"] == pytest.approx(1.0)
    assert cands[7].features["title_embedding_rank"] == 1.0 and cands[4].features["title_embedding"] == 0.0
    assert cands[7].scores["embedding"] == pytest.approx(1.0) and "embedding" in cands[7].sources
    off = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, title_vector=title_vector, options=ranking.Options(title=False)
    )
    assert off[7].features["title_embedding"] == 0.0 and off[7].features["title_embedding_rank"] == 0.0


def test_hashtag_feature_feeds_the_ranker() -> None:
    vocab = _vocab()
    cands = ranking.generate(segments=split_segments(title="#搞笑 汽车"), vector=None, vocab=vocab)
    assert cands[4].features["text_hashtag"] == 1.0 and cands[5].features["text_hashtag"] == 0.0
    ranked = ranking.rank(cands, None)
    assert [c.tag_id for c in ranked][0] == 4  # the weighted sum prefers the uploader's own hashtag


def test_segment_texts_are_distinct_captions_and_speech_without_the_title() -> None:
    segs = split_segments(title="标题很长的标题", ocr="今天去海边|今天去海边|好|看日落吧", asr="明天回家了")
    assert segment_texts(segs) == ["今天去海边", "看日落吧", "明天回家了"]
    assert segment_texts(segs, limit=1) == ["今天去海边"]


def test_segment_embeddings_take_the_best_segment_per_tag_when_switched_on() -> None:
    vocab = _vocab()
    segment_vectors = np.zeros((2, 8), dtype=np.float32)
    segment_vectors[0, 5] = 1.0  # one caption reads like 风景 (id 6)
    segment_vectors[1, 4] = 0.5
    segs = split_segments(title="标题")
    on = ranking.generate(
        segments=segs, vector=None, vocab=vocab, segment_vectors=segment_vectors, options=ranking.Options(segments=True)
    )
    assert on[6].features["segment_embedding"] == pytest.approx(1.0) and on[6].features["segment_embedding_rank"] == 1
    assert on[5].features["segment_embedding"] == pytest.approx(0.5)
    off = ranking.generate(segments=segs, vector=None, vocab=vocab, segment_vectors=segment_vectors)
    assert 6 not in off  # the app's default leaves segment vectors out
