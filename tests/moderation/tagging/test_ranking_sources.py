"""The candidate sources and features added for ranking quality: hashtags, the title's embedding, the
related source (co-occurrence and tag-space neighbours of text hits). Pure functions over small
hand-made vocabularies: no database, no encoder (milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.tagging import evaluation, ranking
from moderation.tagging.text import (
    find_tag_names,
    hashtag_phrases,
    in_hashtag,
    name_prefixes,
    split_segments,
    title_text,
)

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


def test_a_match_inside_a_longer_tag_match_is_covered() -> None:
    lexicon = {"龙虾": 1, "虾": 2, "美食": 3}
    hits = find_tag_names(split_segments(title="今天吃龙虾", ocr="小虾米|美食"), lexicon, 2)
    assert hits[1].uncovered == 1
    assert hits[2].uncovered == 1  # 龙虾 covers the first 虾, not the one in 小虾米
    only_inside = find_tag_names(split_segments(title="龙虾龙虾"), lexicon, 2)
    assert only_inside[2].uncovered == 0 and only_inside[1].uncovered == 2
    names = ["龙虾", "虾", "美食"]
    vocab = ranking.Vocabulary([1, 2, 3], names, lexicon, np.eye(3, 8, dtype=np.float32), 2)
    cands = ranking.generate(segments=split_segments(title="龙虾龙虾"), vector=None, vocab=vocab)
    assert cands[2].features["text_covered"] == 1.0 and cands[1].features["text_covered"] == 0.0
    assert cands[2].features["name_single"] == 1.0 and cands[1].features["name_single"] == 0.0


def test_embedding_features_are_standardised_per_text_and_centred_per_tag() -> None:
    vocab = _vocab()
    vector = vocab.embeddings[0].copy()  # the text "is" 龙虾
    plain = ranking.generate(segments=[], vector=vector, vocab=vocab)
    cos = vocab.embeddings @ vector
    z = (cos - cos.mean()) / cos.std()
    assert plain[1].features["embedding_z"] == pytest.approx(z[0] / 4, rel=1e-5)
    assert plain[1].features["embedding_centred"] == pytest.approx(plain[1].features["embedding"])
    # A hub: every tagged video's text sits near 海鲜 (id 3); its centred cosine drops below its raw one.
    vocab.centre = vocab.embeddings[2].copy()
    centred = ranking.generate(segments=[], vector=vector, vocab=vocab)
    assert centred[3].features["embedding_centred"] == pytest.approx(cos[2] - 1.0, abs=1e-5)
    assert centred[3].features["embedding_centred"] < centred[3].features["embedding"]


def test_duplicate_suppression_of_the_bench_arms_moves_contained_names_below_the_rest() -> None:
    from bench.tagging_nested import suppress_duplicates

    names = ["龙虾", "虾", "美食", "海鲜"]
    emb = np.eye(4, 8, dtype=np.float32)
    emb[3] = (emb[2] + 0.05 * emb[1]) / np.linalg.norm(emb[2] + 0.05 * emb[1])  # 海鲜 ≈ 美食 by cosine
    vocab = ranking.Vocabulary([1, 2, 3, 4], names, {n: i + 1 for i, n in enumerate(names)}, emb, 2)
    assert suppress_duplicates([1, 2, 3, 4], vocab, use_cosine=False) == [1, 3, 4, 2]
    assert suppress_duplicates([1, 2, 3, 4], vocab, use_cosine=True) == [1, 3, 2, 4]


def test_the_learned_model_reads_the_named_feature_columns_only() -> None:
    model = ranking.LinearModel(np.array([1.0]), 0.0, np.zeros(1), np.ones(1))
    cands = {t: ranking.Candidate(t, dict.fromkeys(ranking.FEATURES, 0.0), [], [], {}) for t in (1, 2, 3, 4)}
    cands[4].features["name_single"] = 1.0
    top = ranking.rank(cands, model, features=["name_single"])
    assert top[0].tag_id == 4


def test_acceptance_rates_shrink_rare_tags_towards_the_overall_share() -> None:
    outcomes = [(1, True)] * 2 + [(2, False)] * 8 + [(3, True)] * 5 + [(3, False)] * 5
    rates, base = ranking.acceptance_rates(outcomes, strength=2.0)
    assert base == pytest.approx(7 / 20)
    assert rates[2] == pytest.approx((0 + 2 * base) / 10)
    assert rates[1] == pytest.approx((2 + 2 * base) / 4) and base < rates[1] < 1.0
    vocab = _vocab()
    vocab.rates, vocab.base_rate = {1: 0.9}, 0.1
    cands = ranking.generate(segments=split_segments(title="龙虾 搞笑"), vector=None, vocab=vocab)
    assert cands[1].features["accept_rate"] == 0.9 and cands[4].features["accept_rate"] == 0.1
    assert ranking.acceptance_rates([]) == ({}, 0.0)


def _records(vocab: ranking.Vocabulary) -> list[evaluation.Record]:
    texts = ["龙虾 好吃", "今天吃海鲜", "海鲜 龙虾 美食", "风景 真美", "汽车 搞笑", "旅游 风景"]
    golds = [{1, 2}, {3, 2}, {1, 3}, {6}, {5, 4}, {7, 6}]
    out = []
    for n, (text, gold) in enumerate(zip(texts, golds, strict=True), start=1):
        v = vocab.embeddings[min(gold) - 1] + 0.1 * n
        v = (v / np.linalg.norm(v)).astype(np.float32)
        out.append(evaluation.Record(n, split_segments(title=text), gold, text, vector=v))
    return out


def test_evaluation_candidate_cache_gives_the_same_scores_as_computing_afresh() -> None:
    vocab = _vocab()
    records = _records(vocab)
    fresh = evaluation.cross_validate(records, vocab, folds=2, seed=0)
    with evaluation.caching():
        first = evaluation.cross_validate(records, vocab, folds=2, seed=0)
        assert evaluation._CACHE  # the cache is in use
        again = evaluation.cross_validate(records, vocab, folds=2, seed=0)
    assert evaluation._CACHE is None
    assert any(s.ranked for s in fresh)
    for a, b, c in zip(fresh, first, again, strict=True):
        assert a.ranked == b.ranked == c.ranked


def test_name_prefixes_find_the_same_names_as_every_substring() -> None:
    # The worker stops extending a substring that starts no name: the hits (counts, hashtags, covered
    # occurrences, evidence) must be those of looking up every substring.
    lexicon = {"火锅": 1, "四川火锅": 2, "dj": 3, "dji": 4, "美食": 5, "美食教程": 6, "虾": 7, "龙虾": 8}
    segs = split_segments(title="#四川火锅 美食教程 DJI 航拍", ocr="龙虾|dj 打碟|小虾米 火锅")
    every = find_tag_names(segs, lexicon, 4)
    assert set(every) == {1, 2, 4, 3, 5, 6, 7, 8}
    assert find_tag_names(segs, lexicon, 4, name_prefixes(lexicon)) == every
    assert "四川" in name_prefixes(lexicon) and "川火" not in name_prefixes(lexicon)


def test_hashtag_phrases_are_the_uploaders_own_labels() -> None:
    segs = split_segments(
        title="他真不行 #憨憨日常 #搞笑女日常@某人 #a #动漫cos。 #动漫COS", description="#旅游", ocr="#字幕里的不算"
    )
    # Each phrase ends at white space, the next # or an @ mention; punctuation, one-character and repeated
    # (case / width) phrases are left out; captions and speech carry no uploader's hashtags.
    assert hashtag_phrases(segs) == ["憨憨日常", "搞笑女日常", "动漫cos", "旅游"]
    assert hashtag_phrases(split_segments(title=" ".join(f"#标签{i}" for i in range(20)))) == [
        f"标签{i}" for i in range(8)
    ]
    assert hashtag_phrases(split_segments(title="#" + "长" * 40)) == ["长" * 24]


def test_hashtag_view_gives_features_and_only_optionally_candidates() -> None:
    vocab = _vocab()
    phrases = np.zeros((2, 8), dtype=np.float32)
    phrases[0, 3] = 1.0  # one phrase reads like 搞笑 (id 4)
    phrases[1, [5, 6]] = [0.6, 0.8]  # the other between 风景 (6) and 旅游 (7), closer to 旅游
    vector = np.zeros(8, dtype=np.float32)
    vector[0] = 1.0  # the whole text like 龙虾 (id 1)
    segs = split_segments(title="#哈哈哈 #出去走走")
    plain = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, prior_top=0, options=ranking.Options(embedding_top=1)
    )
    cands = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, prior_top=0, hashtag_vectors=phrases,
        options=ranking.Options(embedding_top=1),
    )  # fmt: skip
    # Features only by default: the same candidates, each reading its best phrase's z-score and rank.
    assert set(cands) == set(plain) == {1}
    assert cands[1].features["hashtag_embedding_rank"] > 0.0  # every tag of this 7-tag vocabulary is in the top 20
    assert plain[1].features["hashtag_embedding_z"] == plain[1].features["hashtag_embedding_rank"] == 0.0
    pooled = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, prior_top=0, hashtag_vectors=phrases,
        options=ranking.Options(embedding_top=1, hashtag_top=2),
    )  # fmt: skip
    assert set(pooled) == {1, 4, 7} and "embedding" in pooled[4].sources
    assert pooled[4].scores["embedding"] == pytest.approx(1.0)
    assert pooled[4].features["hashtag_embedding_rank"] == 1.0  # its phrase's best tag: rank 0
    assert pooled[4].features["hashtag_embedding_z"] > pooled[7].features["hashtag_embedding_z"] > 0
    assert pooled[4].features["hashtag_embedding_z"] > pooled[1].features["hashtag_embedding_z"]
    # The app's ranker does not read the view unless it is adopted; the options say whether to embed phrases.
    assert not ranking.Options().reads_hashtags
    assert ranking.Options(ranker_features=(*ranking.APP_FEATURES, "hashtag_embedding_z")).reads_hashtags
    assert "hashtag_embedding_z" not in ranking.APP_FEATURES


ROUND8 = (*ranking.FEAT_RATE_FEATURES, "prior_weak", "similar_weak", "embedding_z_weak", "prior_smooth")


def test_the_evidence_gate_scales_the_learned_sources_by_how_little_the_text_names() -> None:
    vocab = _vocab()
    vocab.prior = {4: 3.0, 2: 1.0}  # 搞笑 and 美食 were accepted before
    vector = np.zeros(8, dtype=np.float32)
    vector[0] = 1.0
    options = ranking.Options(ranker_features=ROUND8)
    silent = ranking.generate(segments=split_segments(title="哈哈哈"), vector=vector, vocab=vocab, options=options)
    # Nothing named: weakness 1, the gated features equal the plain ones.
    assert silent[4].features["prior"] > 0
    assert silent[4].features["prior_weak"] == pytest.approx(silent[4].features["prior"])
    assert silent[1].features["embedding_z_weak"] == pytest.approx(silent[1].features["embedding_z"])
    one = ranking.generate(segments=split_segments(title="龙虾 真好"), vector=vector, vocab=vocab, options=options)
    assert one[4].features["prior_weak"] == pytest.approx(one[4].features["prior"] * 2 / 3)
    three = ranking.generate(
        segments=split_segments(title="龙虾 海鲜 汽车"), vector=vector, vocab=vocab, options=options
    )
    assert three[4].features["prior"] > 0 and three[4].features["prior_weak"] == 0.0
    # The app's ranker does not read them, so the worker's candidates (and the features it stores) lack them.
    plain = ranking.generate(segments=split_segments(title="哈哈哈"), vector=vector, vocab=vocab)
    assert not ranking.Options().reads_evidence and not ranking.Options().reads_smooth_prior
    assert "prior_weak" not in ranking.APP_FEATURES and "prior_smooth" not in ranking.APP_FEATURES
    round8 = {"prior_weak", "similar_weak", "embedding_z_weak", "prior_smooth"}
    assert set(plain[4].features) == set(ranking.FEATURES) - round8 - {"similar_wide"}  # round 10's: off too
    assert not ranking.feature_matrix([plain[4]])[0, [ranking.FEATURES.index(f) for f in round8]].any()


def test_the_smoothed_prior_lends_a_used_tags_count_to_its_near_synonyms_only() -> None:
    vocab = _vocab()
    vocab.embeddings[2] = [0.95, np.sqrt(1 - 0.95**2), 0, 0, 0, 0, 0, 0]  # 海鲜 at cosine .95 of 龙虾
    vocab.prior = {1: 4.0}  # only 龙虾 was ever accepted
    vector = np.zeros(8, dtype=np.float32)
    vector[0] = 1.0
    cands = ranking.generate(
        segments=split_segments(title="海鲜 美食 搞笑"),
        vector=vector,
        vocab=vocab,
        options=ranking.Options(ranker_features=ROUND8),
    )
    lobster, seafood, food, funny = (cands[t].features for t in (1, 3, 2, 4))
    # 海鲜 borrows half of 龙虾's count ((.95 - .9) / .1): log1p(2) / log1p(4)
    assert seafood["prior"] == 0.0
    assert seafood["prior_smooth"] == pytest.approx(np.log1p(2.0) / np.log1p(4.0), rel=1e-4)
    assert food["prior_smooth"] == 0.0  # 美食 is at cosine .6 of 龙虾: too far to borrow
    assert funny["prior_smooth"] == 0.0
    assert lobster["prior_smooth"] == pytest.approx(lobster["prior"]) == pytest.approx(1.0)
    assert seafood["prior_smooth"] < lobster["prior_smooth"]


def test_arms_sharing_the_cached_pool_still_read_round_8s_features() -> None:
    # The evaluation caches candidates by the pool's options only: an arm reading the gate after one that did not
    # must not get the first arm's zeros.
    vocab = _vocab()
    records = _records(vocab)
    options = ranking.Options(ranker_features=ROUND8)
    fresh = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
    with evaluation.caching():
        evaluation.cross_validate(records, vocab, folds=2, seed=0)  # fills the cache without them
        cached = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
    for a, b in zip(fresh, cached, strict=True):
        assert a.ranked == b.ranked
    know = evaluation.learn(records[:4])
    with evaluation.caching():
        key = evaluation._key(records[:4])
        evaluation.candidates_for(records[4], vocab, know, train_key=key)
        gated = evaluation.candidates_for(records[4], vocab, know, options, train_key=key)
    assert any(c.features["prior_weak"] > 0 or c.features["prior_smooth"] > 0 for c in gated.values())


def _simpson_records() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Features (record-level a, within-record b, shared c) of 12 records: in half, 12 of 30 candidates are gold and
    carry c; in the other half one candidate is gold (the highest b) and six decoys carry c. Pointwise, c is the
    strongest sign of gold over all rows, so the decoys fill those records' top 5."""
    xs, ys = [], []
    for r in range(12):
        many = r % 2 == 0
        a = np.full(30, 1.0 if many else 0.0)
        b = np.linspace(0, 1, 30)
        y = np.zeros(30, dtype=int)
        c = np.zeros(30)
        if many:
            y[:12] = 1
            c[:12] = 1.0
        else:
            y[-1] = 1
            c[:6] = 1.0
        xs.append(np.column_stack([a, b, c]))
        ys.append(y)
    return xs, ys


def _recall_at_5(model: ranking.LinearModel, xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    out = []
    for x, y in zip(xs, ys, strict=True):
        top = np.argsort(-model.score(x), kind="stable")[:5]
        out.append(y[top].sum() / min(5, y.sum()))
    return float(np.mean(out))


def test_the_lambdarank_objective_learns_each_records_order_where_the_pointwise_fit_does_not() -> None:
    # Round 9's arm: pairs that straddle the 5th place carry the gradient, so the decoys that share c with the other
    # records' many gold tags are pushed below the one gold tag; the class-balanced logistic fit keeps them on top.
    xs, ys = _simpson_records()
    pointwise = ranking.fit_linear(np.vstack(xs), np.concatenate(ys))
    lambda_fit = ranking.fit_lambdarank(xs, ys)
    assert _recall_at_5(pointwise, xs, ys) == pytest.approx(0.5)
    assert _recall_at_5(lambda_fit, xs, ys) >= 0.85
    # Platt-scaled: scores on the logistic ranker's scale, gold above the middle on average, decoys below it.
    scores = np.concatenate([lambda_fit.score(x) for x in xs])
    gold = np.concatenate(ys).astype(bool)
    assert scores.min() > 0.0 and scores.max() < 1.0
    assert scores[gold].mean() > 0.5 > scores[~gold].mean()


def test_the_evaluation_fits_the_objective_the_options_name_and_the_app_keeps_the_logistic_one() -> None:
    vocab = _vocab()
    records = _records(vocab)
    logistic, _, _ = evaluation.fit_ranker(records, vocab, seed=0)
    lambda_fit, _, _ = evaluation.fit_ranker(records, vocab, seed=0, options=ranking.Options(objective="lambda"))
    assert logistic is not None and lambda_fit is not None
    assert not np.allclose(logistic.coef, lambda_fit.coef)
    # The app's ranker stays logistic unless round 9's rule adopts the arm (bench/RESULTS.md, "Content tags").
    assert ranking.APP_OPTIONS.objective == "logistic"
    with pytest.raises(ValueError, match="unknown ranker objective"):
        ranking.Options(objective="lamda")


def test_the_wide_neighbourhood_votes_through_a_kernel_that_fades_at_its_edge() -> None:
    # Round 10's arm: the k nearest tagged videos vote, each weighing its similarity minus the (k+1)-th's.
    near = [
        ranking.Neighbour(0.9, [1, 2]),
        ranking.Neighbour(0.8, [2]),
        ranking.Neighbour(0.7, [7]),  # the 3rd: with k = 2 only the kernel's edge, no vote
    ]
    votes = ranking.wide_votes(near, 2)
    assert votes == pytest.approx({1: 0.2 / 0.3, 2: 1.0})
    assert ranking.wide_votes([ranking.Neighbour(0.5, [4])], 2) == {4: 1.0}  # one video: its edge, equal weights
    vocab = _vocab()
    vector = np.zeros(8, dtype=np.float32)
    vector[0] = 1.0
    segs = split_segments(title="风景 真美")  # names 风景 (id 6) only
    narrow = {"embedding_top": 1, "related": False}  # a pool of the text hit, e5's best tag and the nearest's tags
    plain = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, prior_top=0, neighbours=near[:1], options=ranking.Options(**narrow)
    )
    feature = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, prior_top=0, neighbours=near[:1], wide_neighbours=near,
        options=ranking.Options(**narrow, similar_wide=2),
    )  # fmt: skip
    pooled = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, prior_top=0, neighbours=near[:1], wide_neighbours=near,
        options=ranking.Options(**narrow, similar_wide=2, wide_pool=True),
    )  # fmt: skip
    # The feature alone keeps the pool; every candidate reads its share (0 for tags the neighbourhood lacks).
    assert set(feature) == set(plain)
    assert feature[2].features["similar_wide"] == pytest.approx(1.0)
    assert feature[6].features["similar_wide"] == 0.0
    assert feature[2].features["similar"] == plain[2].features["similar"]  # today's 10-nearest vote unchanged
    # With the pool, a tag only the wider ring holds joins as a similar-videos candidate.
    wider = ranking.generate(
        segments=segs, vector=vector, vocab=vocab, prior_top=0, neighbours=near[:1],
        wide_neighbours=[near[0], ranking.Neighbour(0.85, [5]), near[2]],
        options=ranking.Options(**narrow, similar_wide=2, wide_pool=True),
    )  # fmt: skip
    assert 5 not in plain and 5 in wider and wider[5].sources == ["similar"]
    assert wider[5].features["similar"] == 0.0 and wider[5].features["similar_wide"] > 0.0
    assert set(pooled) == set(plain) | {1, 2}
    # Options that do not ask for it leave it out of the candidates' features; a pool needs a neighbourhood.
    assert "similar_wide" not in plain[2].features
    # The app runs round 10's arm ``wide_pool`` (adopted by its registered rule: bench/RESULTS.md).
    assert ranking.APP_OPTIONS.similar_wide == ranking.WIDE_K == 20 and ranking.APP_OPTIONS.wide_pool
    assert ranking.APP_OPTIONS.ranker_features == ranking.APP_FEATURES == (*ranking.FEAT_RATE_FEATURES, "similar_wide")
    with pytest.raises(ValueError, match="wide_pool needs"):
        ranking.Options(wide_pool=True)


def test_the_evaluation_gives_the_wide_feature_to_cached_and_fresh_candidates_alike() -> None:
    # The cache is keyed by the pool: an arm reading ``similar_wide`` over a pool cached without it must still read it.
    vocab = _vocab()
    records = _records(vocab)
    options = ranking.Options(ranker_features=(*ranking.FEAT_RATE_FEATURES, "similar_wide"), similar_wide=2)
    fresh = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
    with evaluation.caching():
        evaluation.cross_validate(records, vocab, folds=2, seed=0)  # fills the cache without it
        cached = evaluation.cross_validate(records, vocab, folds=2, seed=0, options=options)
    for a, b in zip(fresh, cached, strict=True):
        assert a.ranked == b.ranked
    know = evaluation.learn(records[:4])
    cands = evaluation.candidates_for(records[4], vocab, know, options)
    assert any(c.features["similar_wide"] > 0 for c in cands.values())
