"""Rounds 4-5 of the tag ranker's evaluation arms: the listwise objective (per-video softmax, optionally
pulled towards the hand-set weights), reciprocal-rank fusion, the co-occurrence feature ``cooccur_top``
and the adapter (a learned map from video vectors to tag vectors). Pure functions over small
hand-made data (well under a second each, once scikit-learn and SciPy are imported)."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.tagging import evaluation, ranking
from moderation.tagging.text import split_segments


def _groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """30 videos of 10 candidates: within a video the two best by ``signal`` are gold; a second
    column is a per-video level that says nothing about which candidate is gold."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(30), 10)
    level = np.repeat(rng.normal(0, 3, 30), 10)
    signal = rng.normal(0, 1, len(groups))
    y = np.zeros(len(groups), dtype=int)
    for g in range(30):
        rows = np.flatnonzero(groups == g)
        y[rows[np.argsort(-signal[rows])[:2]]] = 1
    return np.c_[signal + level, level], y, groups


def _top2_hits(scores: np.ndarray, y: np.ndarray, groups: np.ndarray) -> int:
    return sum(
        set(np.flatnonzero(groups == g)[np.argsort(-scores[groups == g])[:2]])
        == set(np.flatnonzero((groups == g) & (y == 1)))
        for g in np.unique(groups)
    )


def test_listwise_ranker_orders_each_video_and_ignores_a_per_video_level() -> None:
    x, y, groups = _groups()
    model = ranking.fit_listwise(x, y, groups, c=10.0)
    scores = model.score(x)
    assert ((scores > 0) & (scores < 1)).all()  # Platt-scaled: thresholds still read a probability
    assert _top2_hits(scores, y, groups) >= 27
    # A softmax within each video cannot see a column constant inside the video: the per-video level
    # gets no gradient at all, so its weight stays exactly where it started (0).
    assert model.coef[0] > 0 and model.coef[1] == pytest.approx(0.0, abs=1e-9)


def test_listwise_towards_the_hand_weights_keeps_their_direction_when_data_are_scarce() -> None:
    x, y, groups = _groups(1)
    x = np.c_[x, np.random.default_rng(2).normal(0, 1, len(y))]  # a third column: noise
    towards = np.array([1.0, 0.0, 3.0])  # hand-set raw weights that trust the noise most
    hand = towards * x.std(axis=0)  # their direction on standardised features
    strong = ranking.fit_listwise(x, y, groups, c=1e-6, towards=towards)
    assert strong.coef[0] > 0
    # With almost no weight on the data the fit stays on the hand direction (scaled by its 1-D fit).
    assert strong.coef[2] / strong.coef[0] == pytest.approx(hand[2] / hand[0], rel=1e-3)
    free = ranking.fit_listwise(x, y, groups, c=10.0, towards=towards)
    # Enough data moves the fit off the noise the hand weights trusted.
    assert free.coef[2] / free.coef[0] < 0.5 * strong.coef[2] / strong.coef[0]
    assert _top2_hits(free.score(x), y, groups) > _top2_hits(strong.score(x), y, groups)


def _cands(rows: dict[int, dict[str, float]], text: dict[int, float] | None = None) -> list[ranking.Candidate]:
    out = []
    for tag_id, feats in rows.items():
        f = {k: 0.0 for k in ranking.FEATURES} | feats
        scores = {"text": (text or {}).get(tag_id, 0.0)} if (text or {}).get(tag_id) else {}
        out.append(ranking.Candidate(tag_id, f, [], [], scores, score=f.pop("_score", 0.0)))
    return out


def test_rrf_adds_one_over_k_plus_rank_per_voter_and_skips_voters_that_say_nothing() -> None:
    items = _cands(
        {
            1: {"_score": 0.9},  # the ranker's best, no source
            2: {"_score": 0.5, "embedding_rank": 1.0, "prior": 1.0, "similar": 0.4},
            3: {"_score": 0.1, "embedding_rank": 0.5},
        }
    )
    x = ranking.feature_matrix(items)
    fused = ranking.rrf_scores(items, x, k=60)
    assert fused[0] == pytest.approx(1 / 61)  # first of the ranker, no voter else
    assert fused[1] == pytest.approx(1 / 62 + 1 / 61 + 1 / 61 + 1 / 61)  # 2nd of the ranker, 1st of three
    assert fused[2] == pytest.approx(1 / 63 + 1 / 62)
    cands = {c.tag_id: c for c in items}
    ranked = ranking.rank(cands, None, fusion="rrf")
    assert [c.tag_id for c in ranked][0] == 2  # agreement of the sources outvotes one ranker's order


def test_cooccur_top_raises_the_co_tag_of_a_confident_candidate() -> None:
    names = ["龙虾", "海鲜", "风景"]
    ids = [1, 2, 3]
    emb = np.eye(3, 4, dtype=np.float32)
    vocab = ranking.Vocabulary(ids, names, {n: i for n, i in zip(names, ids, strict=True)}, emb, 2)
    segs = split_segments(title="今天吃龙虾")
    plain = ranking.generate(segments=segs, vector=emb[2].copy(), vocab=vocab, prior_top=0)
    assert all(c.features["cooccur_top"] == 0.0 for c in plain.values())  # no tagged videos: nothing
    vocab.cooccur = {1: {2: 0.75}, 3: {2: 0.1}}
    vocab.prior = {1: 3.0, 2: 3.0}
    app = ranking.generate(segments=segs, vector=emb[2].copy(), vocab=vocab, prior_top=0)
    assert all(
        c.features["cooccur_top"] == 0.0 for c in app.values()
    )  # the app's ranker does not read it: not computed
    reads_it = ranking.Options(ranker_features=(*ranking.APP_FEATURES, "cooccur_top"))
    cands = ranking.generate(segments=segs, vector=emb[2].copy(), vocab=vocab, prior_top=0, options=reads_it)
    # 龙虾 (named in the title) heads the hand-weighted order: its co-tag 海鲜 gets P(海鲜 | 龙虾) × 1.
    assert cands[2].features["cooccur_top"] == pytest.approx(0.75)
    assert cands[1].features["cooccur_top"] == 0.0  # never its own co-tag


def test_listwise_arm_runs_through_the_evaluation() -> None:
    names = ["游戏", "龙虾", "海鲜", "风景"]
    ids = [1, 2, 3, 4]
    emb = np.eye(4, 6, dtype=np.float32)
    vocab = ranking.Vocabulary(ids, names, {n: i for n, i in zip(names, ids, strict=True)}, emb, 2)
    texts = ["游戏 好玩", "今天吃龙虾", "海鲜 龙虾", "风景 真美", "游戏 游戏", "龙虾 海鲜"]
    golds = [{1}, {2, 3}, {3}, {4}, {1}, {2, 3}]
    records = []
    for n, (text, gold) in enumerate(zip(texts, golds, strict=True), start=1):
        v = emb[min(gold) - 1] + 0.05 * n
        segs = split_segments(title=text)
        records.append(evaluation.Record(n, segs, gold, text, vector=(v / np.linalg.norm(v)).astype(np.float32)))
    for options in (
        ranking.Options(objective="listwise", ranker_c=0.1),
        ranking.Options(objective="listwise_prior", ranker_c=0.1),
        ranking.Options(fusion="rrf"),
    ):
        scored = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
        m = evaluation.metrics(scored, 1)
        assert m["recall_at_1"] >= 0.5, options  # the named tag comes first for most records


def test_adapter_learns_where_a_team_s_videos_land_and_carries_it_to_new_videos() -> None:
    # Four tags on the axes; the team tags every video whose vector points at axis 0 with tag 2 (the
    # zero-shot cosine would say tag 1), and axis-2 videos with tag 3 as zero-shot does.
    names = ["美食", "生活记录", "风景", "游戏"]
    ids = [1, 2, 3, 4]
    emb = np.eye(4, 6, dtype=np.float32)
    vocab = ranking.Vocabulary(ids, names, {n: i for n, i in zip(names, ids, strict=True)}, emb, 4)
    rng = np.random.default_rng(0)
    vectors, tags = [], []
    for n in range(40):
        axis = 0 if n % 2 == 0 else 2
        v = np.zeros(6)
        v[axis] = 1.0
        v += rng.normal(0, 0.1, 6)
        vectors.append(v / np.linalg.norm(v))
        tags.append([2] if axis == 0 else [3])
    adapter = ranking.fit_adapter(np.array(vectors), tags, vocab, ridge=1.0)
    assert adapter is not None and adapter.shape == (6, 6)
    new = np.zeros(6, dtype=np.float32)
    new[0] = 1.0  # an unseen axis-0 video
    assert int(np.argmax(emb @ new)) == 0  # zero-shot: 美食
    assert int(np.argmax(emb @ (new @ adapter))) == 1  # the adapter: 生活记录, as the team tags them
    # With no tagged videos there is nothing to learn; with a huge ridge the map stays the identity.
    assert ranking.fit_adapter(np.zeros((0, 6)), [], vocab) is None
    near_identity = ranking.fit_adapter(np.array(vectors), tags, vocab, ridge=1e6)
    assert near_identity is not None and np.allclose(near_identity, np.eye(6), atol=1e-3)

    # In candidate generation: features whenever the vocabulary carries an adapter, candidates only
    # when the view is asked for.
    plain = ranking.generate(segments=[], vector=new, vocab=vocab, options=ranking.Options(embedding_top=1))
    assert set(plain) == {1} and plain[1].features["adapter_z"] == 0.0
    vocab.adapter = adapter
    feats = ranking.generate(segments=[], vector=new, vocab=vocab, options=ranking.Options(embedding_top=1))
    assert set(feats) == {1} and feats[1].features["adapter_rank"] > 0
    view = ranking.generate(
        segments=[], vector=new, vocab=vocab, options=ranking.Options(embedding_top=1, adapter_top=1)
    )
    assert set(view) == {1, 2} and view[2].features["adapter_rank"] == 1.0
    assert view[2].features["adapter_z"] > view[1].features["adapter_z"]
    assert "embedding" in view[2].sources
