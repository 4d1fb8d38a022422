"""Round 6 of the tag ranker's evaluation arms (recall sources): the chunk view (the whole non-title
text in short pieces, each embedded, z-scored per chunk and max-pooled per tag) and the head
neighbourhood (the hand order's best candidates propose their nearest tags). Pure functions over
small hand-made data: no database, no encoder (milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.tagging import ranking
from moderation.tagging.text import chunk_texts, split_segments

NAMES = ["龙虾", "美食", "海鲜", "搞笑", "汽车", "风景", "旅游", "火锅"]


def _vocab() -> ranking.Vocabulary:
    ids = list(range(1, len(NAMES) + 1))
    emb = np.eye(len(NAMES), 8, dtype=np.float32)
    emb[1] = [0.6, 0.8, 0, 0, 0, 0, 0, 0]  # 美食 near 龙虾 (id 1), nothing else
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return ranking.Vocabulary(ids, NAMES, {n: i for n, i in zip(NAMES, ids, strict=True)}, emb, 2)


def test_chunk_texts_cover_the_whole_text_in_short_pieces_without_the_title() -> None:
    segs = split_segments(title="标题", ocr="甲" * 200 + "|乙乙|乙乙|丙丙", asr="丁" * 10)
    chunks = chunk_texts(segs, size=128)
    # the title is left out, a long segment is cut, short ones are packed, repeats are dropped
    assert [len(c) for c in chunks] == [128, 72 + 1 + 2 + 1 + 2 + 1 + 10]
    assert chunks[1].endswith("甲 乙乙 丙丙 " + "丁" * 10)
    assert "".join(chunks).replace(" ", "").count("甲") == 200
    assert len(chunk_texts(split_segments(title="", asr="|".join("段" * 100 + str(i) for i in range(40))))) == 16


def test_chunk_view_proposes_the_tag_one_chunk_is_about_only_when_switched_on() -> None:
    vocab = _vocab()
    chunks = np.zeros((3, 8), dtype=np.float32)
    chunks[:, 4] = [0.3, 0.2, 0.3]  # every chunk a little like 汽车
    chunks[1, 5] = 1.0  # one chunk is about 风景 (id 6)
    chunks /= np.linalg.norm(chunks, axis=1, keepdims=True)
    segs = split_segments(title="标题")
    on = ranking.generate(
        segments=segs, vector=None, vocab=vocab, chunk_vectors=chunks, options=ranking.Options(chunk_top=2)
    )
    # the two tags some chunk is about, and no other
    assert set(on) == {5, 6} and on[6].sources == ["embedding"]
    assert on[6].features["chunk_rank"] > 0 and on[6].features["chunk_z"] > 0.5
    assert on[6].scores["embedding"] == pytest.approx(float(chunks[1, 5]))
    off = ranking.generate(segments=segs, vector=None, vocab=vocab, chunk_vectors=chunks)
    assert off == {}  # the app's default does not read chunks


def test_head_neighbourhood_proposes_the_near_tag_of_a_confident_candidate() -> None:
    vocab = _vocab()
    segs = split_segments(title="今天吃龙虾")  # the text names 龙虾 (id 1) only
    on = ranking.generate(segments=segs, vector=None, vocab=vocab, options=ranking.Options(related=False, head_near=1))
    assert 2 in on and on[2].sources == ["related"] and on[2].features["head_near"] == pytest.approx(0.6)
    assert on[2].evidence[0]["how"] == "near the head" and on[2].evidence[0]["from"] == "龙虾"
    assert on[1].features["head_near"] == 0.0  # its own cosine does not count
    off = ranking.generate(segments=segs, vector=None, vocab=vocab, options=ranking.Options(related=False))
    assert list(off) == [1]
