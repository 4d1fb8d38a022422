"""Round 3 of the tag ranker's evaluation arms: the vocabulary's tag-space structure (smoothed cosine,
density, names containing a name), the second encoder's ensemble view, the pairwise objective and
the evaluation's candidate cache. Pure functions over hand-made vocabularies (milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.tagging import evaluation, ranking
from moderation.tagging.text import split_segments

NAMES = ["游戏", "射击游戏", "手机游戏", "美食", "龙虾", "海鲜", "风景"]


def _vocab() -> ranking.Vocabulary:
    ids = list(range(1, len(NAMES) + 1))
    emb = np.zeros((len(NAMES), 8), dtype=np.float32)
    emb[0, [0, 1, 6]] = [0.4, 0.4, 0.825]  # 游戏 between its two children, with a part of its own
    emb[1, 0] = 1.0
    emb[2, 1] = 1.0
    emb[3, [2, 3]] = [0.7, 0.7]  # 美食 between 龙虾 and 海鲜
    emb[4, 2] = 1.0
    emb[5, [2, 3]] = [0.3, 0.95]
    emb[6, 7] = 1.0
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return ranking.Vocabulary(ids, NAMES, {n: i for n, i in zip(NAMES, ids, strict=True)}, emb, 4)


def test_tag_structure_counts_names_containing_a_name_and_finds_near_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "STRUCTURE_K", 2)
    vocab = _vocab()
    s = ranking.tag_structure(vocab)
    assert s.children[0] == pytest.approx(1.0)  # 游戏 sits inside two names: the most of any tag
    assert s.children[1] == 0.0 and s.children[3] == 0.0
    assert set(s.neighbours[0]) == {1, 2}  # 游戏's nearest tags are its two children
    assert 0 not in s.neighbours[0]  # never itself
    assert s.density[0] > s.density[6]  # the generic tag sits in a crowd, 风景 alone
    assert ranking.tag_structure(vocab) is s  # computed once per vocabulary


def test_smoothed_view_proposes_a_generic_tag_its_own_cosine_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "STRUCTURE_K", 2)
    vocab = _vocab()
    vector = np.zeros(8, dtype=np.float32)
    vector[[0, 1]] = [0.5, 0.5]  # both game children (cosine .71 each), 游戏 itself only .57
    vector /= np.linalg.norm(vector)
    off = ranking.generate(segments=[], vector=vector, vocab=vocab, options=ranking.Options(embedding_top=1))
    assert 1 not in off  # e5's top 1 is a child
    assert vocab.structure is None  # the app's options read no structure feature: none is computed per video
    on = ranking.generate(
        segments=[], vector=vector, vocab=vocab, options=ranking.Options(embedding_top=1, smooth_top=1)
    )
    # 游戏's neighbours (its children) are both near the text: the smoothed view ranks it first.
    best = max(on.values(), key=lambda c: c.features["smooth_rank"])
    assert best.tag_id == 1 and best.features["smooth_rank"] == 1.0
    assert on[1].features["tag_children"] == pytest.approx(1.0)
    assert on[1].scores["embedding"] == pytest.approx(float(vocab.embeddings[0] @ vector))  # a cosine, not a z
    gap = 0.8 * 0.5**0.5 - 0.5**0.5  # 游戏's cosine below the text's best
    assert on[1].features["embedding_gap"] == pytest.approx(gap, abs=1e-3)


def test_ensemble_view_reads_the_second_encoder_only_when_asked() -> None:
    vocab = _vocab()
    vector = vocab.embeddings[6].copy()  # e5 says 风景
    vocab.embeddings2 = np.eye(len(NAMES), 4, dtype=np.float32) * 0 + np.eye(len(NAMES), 4, dtype=np.float32)
    vector2 = np.zeros(4, dtype=np.float32)
    vector2[3] = 1.0  # the second encoder says 美食 (row 3)
    plain = ranking.generate(segments=[], vector=vector, vocab=vocab, vector2=vector2)
    assert all(c.features["ensemble_z"] == 0.0 for c in plain.values())
    options = ranking.Options(embedding_top=1, ensemble_top=2)
    ens = ranking.generate(segments=[], vector=vector, vocab=vocab, vector2=vector2, options=options)
    assert {7, 4} <= set(ens)  # e5's 风景 and the second encoder's 美食
    assert ens[4].features["ensemble_rank"] > 0 and ens[4].features["use_z"] > ens[7].features["use_z"]
    assert "embedding" in ens[4].sources


def test_pairwise_ranker_orders_each_group_and_stays_a_probability() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 10)
    level = np.repeat(rng.normal(0, 3, 30), 10)  # each group's feature level differs a lot
    signal = rng.normal(0, 1, len(groups))
    y = np.zeros(len(groups), dtype=int)
    for g in range(30):
        rows = np.flatnonzero(groups == g)
        y[rows[np.argsort(-signal[rows])[:2]]] = 1  # the two best of each group by `signal` are gold
    x = np.c_[signal + level, level]
    model = ranking.fit_pairwise(x, y, groups, seed=0)
    scores = model.score(x)
    assert ((scores > 0) & (scores < 1)).all()
    hits = sum(
        set(np.flatnonzero(groups == g)[np.argsort(-scores[groups == g])[:2]])
        == set(np.flatnonzero((groups == g) & (y == 1)))
        for g in range(30)
    )
    assert hits >= 27  # within a group, signal + level minus level recovers the order
    # the group's level never differs inside a pair, so the pairwise fit gives it no weight at all
    assert model.coef[0] > 0 and model.coef[1] == pytest.approx(0.0, abs=1e-9)


def _records() -> list[evaluation.Record]:
    vocab = _vocab()
    out = []
    texts = ["射击游戏 好玩", "今天吃龙虾", "海鲜 龙虾 美食", "风景 真美", "手机游戏 射击游戏", "龙虾 海鲜"]
    golds = [{2, 1}, {5, 4}, {6, 4}, {7}, {3, 1}, {5, 6}]
    for n, (text, gold) in enumerate(zip(texts, golds, strict=True), start=1):
        segs = split_segments(title=text)
        v = vocab.embeddings[min(gold) - 1] + 0.1 * n
        out.append(evaluation.Record(n, segs, gold, text, vector=(v / np.linalg.norm(v)).astype(np.float32)))
    return out


def test_candidate_cache_gives_the_same_scores_as_computing_afresh() -> None:
    vocab, records = _vocab(), _records()
    options = ranking.Options(ranker_features=(*ranking.APP_FEATURES, *ranking.STRUCTURE_FEATURES))
    fresh = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
    with evaluation.caching():
        first = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
        assert evaluation._CACHE  # the cache is in use
        again = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
    assert evaluation._CACHE is None
    for a, b, c in zip(fresh, first, again, strict=True):
        assert a.ranked == b.ranked == c.ranked
