"""Content tagging, nested model selection for the ranker (issue 16, round 2; rounds 3-6 closed, below).

The arms below were written down after the error analysis (``--errors``: where the gold tags rank,
what the top-5 false positives are) and before any nested number was seen; none is added or dropped
after. For every outer fold (5-fold, seeds 0..2 by default, the folds of ``evaluate_tags --cv 5
--seed S``) each arm is scored by an inner 5-fold CV *of the outer training part only* (recall@5, ties
to the earlier arm), the winner is trained on the whole training part and scores the held-out fold
once. The "nested" row is the honest estimate of "pick an arm this way, then use it"; the fixed arms'
outer rows are for reference only (picking among them by those numbers would be tuning on them).

Arms (ranker = logistic regression on per-candidate features, trained on out-of-fold candidates):
  v1             the ranker as it was: the 20 features before this round, C = 1, no suppression
  feat           + five features from the error analysis: ``text_covered`` (every text match lies inside
                 a longer match of another tag: 牛 in 牛仔), ``name_single`` (one-character names),
                 ``embedding_z`` / ``title_embedding_z`` (the cosine standardised over the vocabulary
                 for this text), ``embedding_centred`` (cosine minus the tag's cosine to the mean
                 tagged-video vector: hub tags such as 万万没想到 sit near every noisy text)
  feat_c01       feat with C = 0.1 (stronger regularisation: 88 records, 25 features)
  v1_name        v1 + duplicate suppression by name containment in the top 20 (虾 under 龙虾)
  feat_name      feat + the same suppression
  feat_namecos   feat + suppression by name containment or tag-embedding cosine >= 0.9
Round 2b (added after round 1's numbers, written down before their first run; all eight arms are
chosen among inside every outer fold, so the nested row covers both rounds' choices):
  feat_rate      feat + ``accept_rate``: the tag's share of accepted proposals (out-of-fold candidates
                 of the training part, shrunk towards the overall share; the app reads reviewers'
                 accept / reject events), against the frequent false positives 搞笑 / 生活记录
  feat_rate_c01  feat_rate with C = 0.1

Round 7 (``--round 7``; registered in bench/RESULTS.md before its run): the uploader's hashtags as their own
zero-shot view (each ``text.hashtag_phrases`` phrase embedded alone, max cosine per tag), two arms added to the
eight above:
  hash           feat_rate + ``hashtag_embedding_z`` and ``hashtag_embedding_rank`` (features only, same pool)
  hash_pool      hash + the view's 10 best tags join the embedding source (``Options.hashtag_top`` = 10)
The nested row chooses among all ten; "nested_r2" is round 2's choice among the eight alone on the same
folds, the reference of round 7's adoption rule. Run once (seeds 0-2): nested .243 / .523 against the reference's
.243 / .523, higher in one seed of three: not adopted (the view stays in the code, off in the app).

Round 8 (``--round 8``; registered in bench/RESULTS.md before its run), two arms added to round 2's eight, same pool:
  gate           feat_rate + ``prior_weak``, ``similar_weak``, ``embedding_z_weak``: the prior, the neighbours' votes
                 and the e5 z-score each times the record's weakness (1 - distinct multi-character tags its text
                 names / 3, floored at 0; ``ranking._weakness``): a linear ranker cannot lean on the learned sources
                 only where the text is silent
  smooth         feat_rate + ``prior_smooth``: the accepted count plus what used tags within tag-embedding cosine .9
                 lend (``ranking._smooth_prior``), so an unused near-synonym of a common tag is not read as unknown
"nested_r2" is again the reference of the adoption rule (the same as round 7's). Run once (seeds 0-2, at 12e1a14):
nested .243 / .523, the reference's to the last digit (neither arm won an inner choice): not adopted, the features
stay in the code, off in the app.

Round 9 (``--round 9``; registered in bench/RESULTS.md before its run), one arm added to round 2's eight, same pool
and features as ``feat_rate``:
  lambda         feat_rate's features, the ranker fitted by ``ranking.fit_lambdarank`` (``Options.objective`` =
                 "lambda"): warm-started from the logistic fit, then each record's (gold, other) pairs weighted by
                 what swapping them does to recall@5 (+ a floor of .1), Platt-scaled; constants in ``ranking``
"nested_r2" is again the reference of the adoption rule. Run once (seeds 0-2, at 1411120): nested .243 / .523, the
reference's medians (R@5 +.002 / +.007 / .000 by seed; chosen in 3 of 15 folds): not adopted, the objective stays in
the code, off in the app.

Round 10 (``--round 10``; registered in bench/RESULTS.md before its run), two arms added to round 2's eight: a wider
neighbourhood of tagged records (the 20 nearest by the whole text's e5 vector, not only today's 10), voting through a
kernel that fades to 0 at the 21st's similarity (``ranking.wide_votes``):
  wide           feat_rate + ``similar_wide`` (each candidate's share of the wide neighbourhood's votes), pool unchanged
  wide_pool      wide + the wide neighbourhood's tags join the pool (``Options.wide_pool``; source ``similar``)
"nested_r2" is again the reference of the adoption rule. Run once (seeds 0-2, at 2b53554): nested .245 / .535 against
the reference's .243 / .523 (R@5 +.009 / .000 / +.012 by seed; wide_pool chosen in 2 of 15 folds, wide in 1): adopted
by the rule (``ranking.APP_OPTIONS`` is ``wide_pool``'s options; ``WIDE_K`` here and ``ranking.WIDE_K`` are both 20).

Rounds 3-6 are closed, none adopted (bench/RESULTS.md, "Content tags"): their arms and the ranker options
only they read left the code. Round 3 (tag-space structure, the second encoder's ensemble view, a wider
pool, a pairwise objective): numbers from ``--round 3`` as of 6514201. Rounds 4 (listwise objectives,
``cooccur_top``, reciprocal-rank fusion) and 5 (the adapter) and ``--ceiling``'s widest-pool rows: as of
8ac0d3f. The last version of this script with rounds 3-5 is 2457661 (``git show
2457661:bench/tagging_nested.py``, with ``moderation/tagging/ranking.py`` and ``evaluation.py`` of
that commit). Round 6 (recall sources: the chunk view and the head neighbourhood, after ``--recall``'s
diagnosis, which stays here): nested R@5 .494 against ``feat_rate``'s .518; its numbers came from
``--round 6`` as of 4c712bd (its last version with round 6 is bf17c5b).

Duplicate suppression (round 2's ``*_name`` arms) lives here: it reorders the ranked list after the
ranker, so it needs nothing from the app's ranker.

    .venv/bin/python bench/tagging_nested.py [--round 2|7|8|9|10] [--recall] [--pool] [--ceiling] [--seeds 0 1 2] [--folds 5] [--jobs 2] [--errors]

Embeddings come from ``bench/tagging_cv.py``'s cache under ``var/`` (computed once, ~1 min).
Each outer fold prints when it is done. The last line printed is one JSON object: ``ratio`` = nested
recall@5 median ÷ the reference arm's (v1) outer median.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
sys.path.insert(0, str(_ROOT / "bench"))

K = 5


@dataclass(frozen=True)
class Arm:
    """One arm: the evaluation's options (features, C) and duplicate suppression after the ranker
    ("none"; "name": a tag whose name contains or is contained in a better-placed one's; "name+cos":
    that or a tag-embedding cosine >= ``DEDUP_COSINE``)."""

    options: Any  # moderation.tagging.ranking.Options
    dedup: str = "none"


ROUND2 = ("v1", "feat", "feat_c01", "v1_name", "feat_name", "feat_namecos", "feat_rate", "feat_rate_c01")


def arms(round_: int = 2) -> dict[str, Arm]:
    """Round 2's eight arms, and in round 7 its two hashtag arms after them, in round 8 its two, in round 9 its one
    (ties go to the earlier arm)."""
    from moderation.tagging import ranking

    feat = tuple(ranking.FEATURES[: ranking.FEATURES.index("accept_rate")])
    v1 = tuple(ranking.FEATURES[: ranking.FEATURES.index("text_covered")])
    rate = (*feat, "accept_rate")
    out = {
        "v1": Arm(ranking.Options(ranker_features=v1)),
        "feat": Arm(ranking.Options(ranker_features=feat)),
        "feat_c01": Arm(ranking.Options(ranker_features=feat, ranker_c=0.1)),
        "v1_name": Arm(ranking.Options(ranker_features=v1), dedup="name"),
        "feat_name": Arm(ranking.Options(ranker_features=feat), dedup="name"),
        "feat_namecos": Arm(ranking.Options(ranker_features=feat), dedup="name+cos"),
        "feat_rate": Arm(ranking.Options(ranker_features=rate)),
        "feat_rate_c01": Arm(ranking.Options(ranker_features=rate, ranker_c=0.1)),
    }
    if round_ == 7:
        hashtag = (*rate, "hashtag_embedding_z", "hashtag_embedding_rank")
        out["hash"] = Arm(ranking.Options(ranker_features=hashtag))
        out["hash_pool"] = Arm(ranking.Options(ranker_features=hashtag, hashtag_top=10))
    if round_ == 9:
        out["lambda"] = Arm(ranking.Options(ranker_features=rate, objective="lambda"))
    if round_ == 10:
        wide = (*rate, "similar_wide")
        out["wide"] = Arm(ranking.Options(ranker_features=wide, similar_wide=WIDE_K))
        out["wide_pool"] = Arm(ranking.Options(ranker_features=wide, similar_wide=WIDE_K, wide_pool=True))
    if round_ == 8:
        out["gate"] = Arm(ranking.Options(ranker_features=(*rate, "prior_weak", "similar_weak", "embedding_z_weak")))
        out["smooth"] = Arm(ranking.Options(ranker_features=(*rate, "prior_smooth")))
    return out


NEW_ARMS = {7: ("hash", "hash_pool"), 8: ("gate", "smooth"), 9: ("lambda",), 10: ("wide", "wide_pool")}
WIDE_K = 20  # round 10: the wide neighbourhood's size (fixed before its run from a diagnosis on training folds only)
# (``ranking.WIDE_K``, the app's since round 10 was adopted, is the same number)


DEDUP_COSINE = 0.9
DEDUP_DEPTH = 20  # duplicate suppression reorders this many of the best candidates


def suppress_duplicates(ids: list[int], vocab: Any, *, use_cosine: bool) -> list[int]:
    """Among the best ``DEDUP_DEPTH`` tag ids, a tag whose name contains or is contained in a better-placed
    tag's name (虾 under 龙虾, 直播间 under 直播), or (``use_cosine``) whose tag embedding is within
    ``DEDUP_COSINE`` of one, moves after the non-duplicates of that depth."""
    index = vocab.index
    head, tail = ids[:DEDUP_DEPTH], ids[DEDUP_DEPTH:]
    kept: list[int] = []
    moved: list[int] = []
    for t in head:
        i = index.get(t)
        name = vocab.names[i] if i is not None else ""
        dup = False
        for k in kept:
            j = index.get(k)
            if i is None or j is None:
                continue
            other = vocab.names[j]
            contained = bool(name) and (name in other or other in name)
            dup = contained or (use_cosine and float(vocab.embeddings[i] @ vocab.embeddings[j]) >= DEDUP_COSINE)
            if dup:
                break
        (moved if dup else kept).append(t)
    return kept + moved + tail


def _suppressed(scored: list[Any], vocab: Any, arm: Arm) -> list[Any]:
    """``evaluation.Scored`` rows with the arm's duplicate suppression applied to their ranking (scores unchanged)."""
    if arm.dedup == "none":
        return scored
    for s in scored:
        score = dict(s.ranked)
        order = suppress_duplicates([t for t, _ in s.ranked], vocab, use_cosine=arm.dedup == "name+cos")
        s.ranked = [(t, score[t]) for t in order]
    return scored


def tag_structure(vocab: Any) -> Any:
    """What the vocabulary's shape says about each tag (for ``--errors`` and ``--recall``): ``neighbours``,
    its ``STRUCTURE_K`` nearest tags by tag embedding (row indices), and ``children``, how many other
    names contain its name (游戏 inside 射击游戏, 手机游戏 …), log-scaled to [0, 1]. Computed once per process."""
    import math
    from types import SimpleNamespace

    import numpy as np

    if _STATE.get("structure_of") is vocab:
        return _STATE["structure"]
    n = len(vocab.tag_ids)
    k = max(0, min(STRUCTURE_K, n - 1))
    neighbours = np.zeros((n, k), dtype=np.int64)
    emb = vocab.embeddings
    for lo in range(0, n, 1024):
        sims = emb[lo : lo + 1024] @ emb.T
        sims[np.arange(len(sims)), np.arange(lo, lo + len(sims))] = -np.inf
        if k:
            neighbours[lo : lo + len(sims)] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(vocab.names):
        by_name.setdefault(name, []).append(i)
    counts = np.zeros(n, dtype=np.float32)
    for name in set(vocab.names):
        # every shorter substring of this name that is itself a tag name has one more "child"
        subs = {name[a:b] for a in range(len(name)) for b in range(a + 1, len(name) + 1)} - {name}
        for sub in subs:
            for i in by_name.get(sub, ()):
                counts[i] += 1
    children = np.log1p(counts) / math.log1p(float(counts.max())) if n and counts.max() > 0 else counts
    _STATE["structure_of"], _STATE["structure"] = vocab, SimpleNamespace(neighbours=neighbours, children=children)
    return _STATE["structure"]


STRUCTURE_K = 10


_STATE: dict[str, Any] = {}


def _load() -> tuple[Any, list[Any]]:
    if "data" not in _STATE:
        import tagging_cv

        _STATE["data"] = tagging_cv.load(tagging_cv.VOCAB, tagging_cv.DEV, tagging_cv.TAGS)
    return _STATE["data"]  # type: ignore[no-any-return]


def outer_fold(seed: int, fold: int, folds: int, round_: int = 2) -> dict[str, Any]:
    """One outer fold: inner scores of every arm, the chosen arm, and every arm's outer predictions."""
    from moderation.tagging import evaluation

    vocab, records = _load()
    held = evaluation._folds(len(records), folds, seed)[fold]
    held_set = {int(i) for i in held}
    train = [r for i, r in enumerate(records) if i not in held_set]
    test = [records[int(i)] for i in held]
    inner: dict[str, float] = {}
    outer: dict[str, list[tuple[list[int], list[int]]]] = {}
    # Arms sharing candidate options share their candidates (computed once per training part).
    with evaluation.caching():
        for name, arm in arms(round_).items():
            options = arm.options
            scored = evaluation.cross_validate(train, vocab, folds=folds, seed=1000 + seed * 10 + fold, options=options)
            inner[name] = evaluation.metrics(_suppressed(scored, vocab, arm), K)[f"recall_at_{K}"]
            out = _suppressed(evaluation.run(train, test, vocab, seed=seed, options=options), vocab, arm)
            outer[name] = [([t for t, _ in s.ranked[:20]], sorted(s.gold)) for s in out]
    names = list(inner)
    chosen = max(names, key=lambda n: (inner[n], -names.index(n)))
    chosen_r2 = max(ROUND2, key=lambda n: (inner[n], -names.index(n)))
    return {"seed": seed, "fold": fold, "inner": inner, "chosen": chosen, "chosen_r2": chosen_r2, "outer": outer}


def _scores(rows: list[tuple[list[int], list[int]]]) -> tuple[float, float]:
    ps, rs = [], []
    for ranked, gold in rows:
        hits = len(set(ranked[:K]) & set(gold))
        ps.append(hits / K)
        rs.append(hits / len(gold))
    return statistics.mean(ps), statistics.mean(rs)


def _fitted_folds(
    records: list[Any], vocab: Any, folds: int, seed: int, options: Any
) -> Iterator[tuple[Any, list[Any], Any, Any]]:
    """For each outer fold of ``seed``: its held-out indices, the rest (the training part), the ranker fitted on it, and what it
    teaches (tag rates, base rate, co-occurrence), as ``evaluate_tags --cv`` fits them."""
    from moderation.tagging import evaluation

    for held in evaluation._folds(len(records), folds, seed):
        held_set = {int(i) for i in held}
        train = [r for i, r in enumerate(records) if i not in held_set]
        model, rates, base = evaluation.fit_ranker(train, vocab, seed=seed, options=options)
        know = evaluation.learn(train)
        know.rates, know.base_rate = rates, base
        yield held, train, model, know


def errors(seed: int, folds: int, arm: Arm) -> None:
    """Where the gold tags rank and what fills the top 5 instead (outer folds, one seed)."""
    from moderation.tagging import evaluation, ranking

    options = arm.options
    vocab, records = _load()
    names = dict(zip(vocab.tag_ids, vocab.names, strict=True))
    positions: list[int | None] = []
    fp: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    missed: list[dict[str, Any]] = []
    for held, _, model, know in _fitted_folds(records, vocab, folds, seed, options):
        for i in held:
            r = records[int(i)]
            cands = evaluation.candidates_for(r, vocab, know, options)
            ranked = ranking.rank(cands, model, features=options.ranker_features)
            if arm.dedup != "none":
                order = suppress_duplicates([c.tag_id for c in ranked], vocab, use_cosine=arm.dedup == "name+cos")
                ranked = [cands[t] for t in order]
            ids = [c.tag_id for c in ranked]
            positions += [ids.index(g) if g in ids else None for g in r.gold]
            gold_names = [names[g] for g in r.gold]
            missed += [_miss(r, g, ids, know, vocab, names) for g in r.gold if g not in ids[:K]]
            for c in ranked[:K]:
                if c.tag_id in r.gold:
                    continue
                name = names[c.tag_id]
                fp[name] += 1
                if any(name != g and (name in g or g in name) for g in gold_names):
                    kinds["name contains / inside a gold tag"] += 1
                elif len(name) == 1:
                    kinds["one-character name"] += 1
                elif set(c.sources) <= {"similar", "classifier", "related"} or not c.sources:
                    kinds["only learned sources (neighbours, classifiers, co-tags, prior)"] += 1
                elif "text" in c.sources:
                    kinds["named in the text, not gold"] += 1
                else:
                    kinds["embedding only / embedding + learned"] += 1
    n = len(positions)
    found = [p for p in positions if p is not None]
    print(
        f"gold tags {n}: in the pool {len(found) / n:.3f}, top 5 {sum(p < 5 for p in found) / n:.3f}, "
        f"6-10 {sum(5 <= p < 10 for p in found) / n:.3f}, 11-20 {sum(10 <= p < 20 for p in found) / n:.3f}, "
        f"beyond 20 {sum(p >= 20 for p in found) / n:.3f}, never proposed {(n - len(found)) / n:.3f}"
    )
    print("top-5 false positives by kind:", dict(kinds.most_common()))
    print("most frequent top-5 false positives:", ", ".join(f"{k} {v}" for k, v in fp.most_common(15)))
    for label, group in (
        ("never proposed", [m for m in missed if m["position"] is None]),
        ("proposed, ranked 6th or lower", [m for m in missed if m["position"] is not None]),
    ):
        if not group:
            continue
        share = {key: sum(1 for m in group if m[key]) / len(group) for key in group[0] if key.startswith("is_")}
        print(
            f"gold tags {label}: {len(group)} ({len(group) / n:.3f});",
            ", ".join(f"{k[3:]} {v:.2f}" for k, v in share.items()),
        )
        print("   e.g. " + " ".join(m["tag"] for m in group[:40]))


def ceiling(seed: int, folds: int, options: Any) -> tuple[float, float, float]:
    """How far re-weighting these features could go at all: every record's outer-fold candidates (as
    in the CV), the arm's ranker then fitted on *all* of them, the very records it scores (optimistic:
    an upper bound for any model of this form, not an estimate). Returns (P@5, R@5, pool recall)."""
    import numpy as np

    from moderation.tagging import evaluation, ranking

    vocab, records = _load()
    rows: list[tuple[list[Any], set[int]]] = []
    with evaluation.caching():
        for held, train, _, know in _fitted_folds(records, vocab, folds, seed, options):
            for i in held:
                r = records[int(i)]
                cands = evaluation.candidates_for(r, vocab, know, options, train_key=evaluation._key(train))
                rows.append((list(cands.values()), r.gold))
    cols = [ranking.FEATURES.index(f) for f in options.ranker_features]
    x = np.vstack([ranking.feature_matrix(c)[:, cols] for c, _ in rows])
    y = np.concatenate([[c.tag_id in gold for c in cands] for cands, gold in rows]).astype(int)
    groups = np.concatenate([np.full(len(cands), n) for n, (cands, _) in enumerate(rows)])
    # Almost no regularisation (C = 100): a bound, not a model to use.
    model = ranking.fit_linear(x, y, c=100.0)
    scores = model.score(x)
    ps, rs, pool = [], [], []
    for n, (cands, gold) in enumerate(rows):
        own = np.flatnonzero(groups == n)
        top = {cands[int(j)].tag_id for j in np.argsort(-scores[own], kind="stable")[:K]}
        ps.append(len(top & gold) / K)
        rs.append(len(top & gold) / len(gold))
        pool.append(len({c.tag_id for c in cands} & gold) / len(gold))
    return float(np.mean(ps)), float(np.mean(rs)), float(np.mean(pool))


def _miss(r: Any, g: int, ids: list[int], know: Any, vocab: Any, names: dict[int, str]) -> dict[str, Any]:
    """What a gold tag missed at 5 looks like: seen in the training part, its name (or a two-character
    piece of it) in the text, a near-synonym named in the text, e5's rank of it over the whole
    vocabulary (text or title), its parent-like shape (other tags contain its name), reachable by
    co-occurrence from the ranker's top 10."""
    import numpy as np

    from moderation.tagging.text import normalise

    index = vocab.index
    i = index[g]
    name = names[g]
    text = normalise(" ".join(seg.text for seg in r.segments))
    cos = vocab.embeddings @ r.vector
    if r.title_vector is not None:
        cos = np.maximum(cos, vocab.embeddings @ r.title_vector)
    e5_rank = int((cos > cos[i]).sum())
    structure = tag_structure(vocab)
    near = [names[vocab.tag_ids[int(j)]] for j in structure.neighbours[i]]
    return {
        "tag": name,
        "position": ids.index(g) if g in ids else None,
        "is_seen in training": know.prior.get(g, 0) > 0,
        "is_name in text": normalise(name) in text,
        "is_two-character piece in text": len(name) > 2 and any(name[a : a + 2] in text for a in range(len(name) - 1)),
        "is_a near tag named in text": any(normalise(t) in text for t in near),
        "is_e5 rank < 100": e5_rank < 100,
        "is_e5 rank 100-499": 100 <= e5_rank < 500,
        "is_parent-like (other tag names contain it)": float(structure.children[i]) > 0,
        "is_co-occurs with a top-10 tag": any(know.cooccur.get(t, {}).get(g, 0) > 0 for t in ids[:10]),
    }


def _ranks(values: Any) -> Any:
    """Each entry's rank (0 = best) in ``values``."""
    import numpy as np

    order = np.argsort(-values, kind="stable")
    out = np.empty(len(values), dtype=np.int64)
    out[order] = np.arange(len(values))
    return out


def chunk_texts(segments: list[Any], *, size: int = 128, limit: int = 16) -> list[str]:
    """The whole non-title text of ``segments`` (``text.Segment``: description, on-screen text, speech),
    de-duplicated, in order, packed into pieces of at most ``size`` characters (segments joined by spaces; a
    longer segment is cut), at most ``limit`` of them: per-chunk zero-shot sees what the whole text's single
    vector dilutes, and text past ``text.embedding_text``'s 512 characters (a third of dev records have long
    speech). Round 6's chunk view, kept for ``--recall``."""
    seen: set[str] = set()
    out: list[str] = []
    current = ""
    for seg in segments:
        t = seg.text.strip()
        if seg.field == "title" or not t or t in seen:
            continue
        seen.add(t)
        for piece in (t[i : i + size] for i in range(0, len(t), size)):
            if current and len(current) + 1 + len(piece) > size:
                out.append(current)
                current = piece
                if len(out) >= limit:
                    return out
            else:
                current = f"{current} {piece}" if current else piece
    if current and len(out) < limit:
        out.append(current)
    return out


def chunk_vectors(records: list[Any]) -> list[Any]:
    """Each record's ``chunk_texts`` embedded with the tagging encoder (cached like the other vectors)."""
    import numpy as np
    import tagging_cv

    from moderation.tagging import encoder

    pieces = [chunk_texts(r.segments) for r in records]
    flat = [t for texts in pieces for t in texts]
    vectors = tagging_cv._cached_encode(flat, encoder.encode, encoder.ENCODER_NAME) if flat else np.zeros((0, 384))
    out, at = [], 0
    for texts in pieces:
        out.append(vectors[at : at + len(texts)])
        at += len(texts)
    return out


def recall_diagnosis(seeds: list[int], folds: int) -> None:
    """Round 6's diagnosis: where the app's missed gold tags are (outer folds of the app's ranker) and
    which recall source could have reached them. For each gold tag outside the top 5: never proposed or
    ranked low (its sources and features), and its rank under candidate views the pool lacks — e5 over
    ``chunk_texts`` pieces max-pooled (raw, and z-scored per chunk: the whole text is clipped at
    512 characters), character-bigram coverage of its name in the text, training co-occurrence with
    the ranker's top 10 (lift), a pool candidate whose name contains its name (a parent / genre),
    a tag-embedding neighbour of the top 10 — over seeds, counts summed."""
    import numpy as np

    from moderation.tagging import evaluation, ranking
    from moderation.tagging.text import normalise

    vocab, records = _load()
    options = arms()["feat_rate"].options
    names = dict(zip(vocab.tag_ids, vocab.names, strict=True))
    index = vocab.index
    structure = tag_structure(vocab)
    chunks = chunk_vectors(records)
    total = 0
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for held, train, model, know in _fitted_folds(records, vocab, folds, seed, options):
            n_train = len(train)
            counts = collections.Counter(t for r in train for t in r.gold)
            pairs: collections.Counter[tuple[int, int]] = collections.Counter(
                (a, b) for r in train for a in r.gold for b in r.gold if a != b
            )
            for i in held:
                r = records[int(i)]
                cands = evaluation.candidates_for(r, vocab, know, options)
                ranked = ranking.rank(cands, model, features=options.ranker_features)
                ids = [c.tag_id for c in ranked]
                text = normalise(" ".join(seg.text for seg in r.segments))
                grams = {text[a : a + 2] for a in range(len(text) - 1)}
                cos = vocab.embeddings @ r.vector
                r_text = _ranks(cos)
                r_title = _ranks(vocab.embeddings @ r.title_vector) if r.title_vector is not None else None
                r_chunk = r_chunkz = None
                if len(chunks[int(i)]):
                    per = vocab.embeddings @ chunks[int(i)].T  # (tags, chunks)
                    r_chunk = _ranks(per.max(axis=1))
                    z = (per - per.mean(axis=0)) / np.maximum(per.std(axis=0), 1e-9)
                    r_chunkz = _ranks(z.max(axis=1))
                top10 = ids[:10]
                near10 = {vocab.tag_ids[int(j)] for t in top10 if t in index for j in structure.neighbours[index[t]]}
                for g in r.gold:
                    total += 1
                    pos = ids.index(g) if g in ids else None
                    if pos is not None and pos < K:
                        continue
                    gi = index[g]
                    name = names[g]
                    own = {name[a : a + 2] for a in range(len(name) - 1)}
                    lift = max(
                        (pairs[(t, g)] / counts[t] / (counts[g] / n_train) for t in top10 if pairs[(t, g)]),
                        default=0.0,
                    )
                    c = cands.get(g)
                    rows.append(
                        {
                            "seed": seed,
                            "tag": name,
                            "pos": pos,
                            "sources": sorted(set(c.sources)) if c is not None else [],
                            "prior_only": c is not None and not c.sources,
                            "seen": counts[g],
                            "r_text": int(r_text[gi]),
                            "r_title": int(r_title[gi]) if r_title is not None else 10**6,
                            "r_chunk": int(r_chunk[gi]) if r_chunk is not None else 10**6,
                            "r_chunkz": int(r_chunkz[gi]) if r_chunkz is not None else 10**6,
                            "bigram": len(own & grams) / len(own) if len(name) >= 3 and own else 0.0,
                            "lift": lift,
                            "parent_of_pool": any(name != names[t] and name in names[t] for t in ids[:20]),
                            "near_top10": g in near10,
                            "generic": float(structure.children[gi]) > 0,
                        }
                    )
    n_seeds = len(seeds)
    print(f"gold tags over seeds {seeds}: {total} ({total // n_seeds} a seed); missed at 5: {len(rows)}")
    groups = {
        "never proposed": [m for m in rows if m["pos"] is None],
        "proposed, ranked 6-10": [m for m in rows if m["pos"] is not None and m["pos"] < 10],
        "proposed, ranked 11-20": [m for m in rows if m["pos"] is not None and 10 <= m["pos"] < 20],
        "proposed, ranked > 20": [m for m in rows if m["pos"] is not None and m["pos"] >= 20],
    }
    reach = {
        "chunk e5 top 20": lambda m: m["r_chunk"] < 20,
        "chunk e5 (z per chunk) top 20": lambda m: m["r_chunkz"] < 20,
        "whole-text e5 top 20": lambda m: m["r_text"] < 20,
        "title e5 top 20": lambda m: m["r_title"] < 20,
        "chunk e5 top 50": lambda m: m["r_chunk"] < 50,
        "any e5 view rank 50-499": lambda m: 50 <= min(m["r_chunk"], m["r_text"], m["r_title"], m["r_chunkz"]) < 500,
        "every e5 view rank >= 500": lambda m: min(m["r_chunk"], m["r_text"], m["r_title"], m["r_chunkz"]) >= 500,
        "bigram coverage >= .5 (names of 3+ chars)": lambda m: m["bigram"] >= 0.5,
        "co-occurs in training with a top-10 tag (lift > 1)": lambda m: m["lift"] > 1,
        "seen in the training part": lambda m: m["seen"] > 0,
        "parent of a top-20 candidate (name inside its name)": lambda m: m["parent_of_pool"],
        "tag-embedding neighbour of a top-10 tag": lambda m: m["near_top10"],
        "generic (other tag names contain it)": lambda m: m["generic"],
    }
    for label, group in groups.items():
        if not group:
            continue
        print(f"\n{label}: {len(group)} ({len(group) / total:.3f} of gold tags)")
        for key, test in reach.items():
            print(f"  {key:<55} {sum(1 for m in group if test(m)) / len(group):.2f}")
        if label != "never proposed":
            src = collections.Counter(s for m in group for s in (m["sources"] or ["prior only"]))
            print("  sources: " + ", ".join(f"{s} {n / len(group):.2f}" for s, n in src.most_common()))
        print("  e.g. " + " ".join(m["tag"] for m in group if m["seed"] == seeds[0])[:400])
    never = groups["never proposed"]
    untouched = [
        m
        for m in never
        if m["r_chunk"] >= 50
        and m["r_chunkz"] >= 50
        and m["r_text"] >= 50
        and m["r_title"] >= 50
        and m["bigram"] < 0.5
        and m["lift"] <= 1
        and not m["parent_of_pool"]
    ]
    print(
        f"\nnever proposed and out of reach of all of the above (no e5 view in its top 50, no bigram, no lift, "
        f"no child in the pool): {len(untouched)} ({len(untouched) / max(1, len(never)):.2f} of never proposed)"
    )
    print("  e.g. " + " ".join(sorted({m["tag"] for m in untouched}))[:500])


def pool_sizes(seed: int, folds: int, round_: int = 2) -> None:
    """Each arm's candidate pool on the outer folds of one seed: candidates a video, the share of gold
    tags in the pool, and the gold tags an arm's pool holds that ``feat_rate``'s (the app's until round 10) lacks."""
    import numpy as np

    from moderation.tagging import evaluation

    vocab, records = _load()
    pools: dict[str, list[set[int]]] = {}
    for name, arm in arms(round_).items():
        options = arm.options
        pools[name] = []
        for held in evaluation._folds(len(records), folds, seed):
            held_set = {int(i) for i in held}
            know = evaluation.learn([r for i, r in enumerate(records) if i not in held_set])
            pools[name] += [set(evaluation.candidates_for(records[int(i)], vocab, know, options)) for i in held]
    order = [records[int(i)] for held in evaluation._folds(len(records), folds, seed) for i in held]
    gold = sum(len(r.gold) for r in order)
    base = pools["feat_rate"]
    print(f"candidate pools, outer folds of seed {seed} ({gold} gold tags)")
    for name, pool in pools.items():
        found = sum(len(p & r.gold) for p, r in zip(pool, order, strict=True))
        extra = sum(len((p - b) & r.gold) for p, b, r in zip(pool, base, order, strict=True))
        print(
            f"  {name:<12} {np.mean([len(p) for p in pool]):6.1f} candidates a video, pool recall {found / gold:.3f}, "
            f"gold tags feat_rate's pool lacks {extra}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--errors", action="store_true", help="print the error analysis of the reference arm")
    parser.add_argument(
        "--ceiling", action="store_true", help="the in-sample ceiling of each arm's ranker (seed: the first)"
    )
    parser.add_argument(
        "--recall", action="store_true", help="round 6's diagnosis: where the missed gold tags are, then stop"
    )
    parser.add_argument("--pool", action="store_true", help="each arm's candidate pool (first seed), then stop")
    parser.add_argument(
        "--round",
        type=int,
        choices=(2, 7, 8, 9, 10),
        default=2,
        help=(
            "2: round 2's arms; 7: + the hashtag arms; 8: + the evidence gate and the smoothed prior; "
            "9: + the metric-weighted pairwise (LambdaRank) objective; 10: + the wider neighbourhood of tagged records"
        ),
    )
    args = parser.parse_args()
    reference = "v1"

    t0 = time.perf_counter()
    vocab, records = _load()
    print(f"{len(vocab.tag_ids)} tags, {len(records)} tagged records ({time.perf_counter() - t0:.0f} s to load)")
    if args.recall:
        recall_diagnosis(args.seeds, args.folds)
        return
    if args.pool:
        pool_sizes(args.seeds[0], args.folds, args.round)
        return
    if args.errors:
        for name in ("v1", "feat"):
            print(f"\nerror analysis, arm {name}, seed {args.seeds[0]}")
            errors(args.seeds[0], args.folds, arms()[name])
    if args.ceiling:
        print(f"\nin-sample ceiling (ranker fitted on the records it scores), seed {args.seeds[0]}")
        for name, arm in arms().items():
            p, r, pool = ceiling(args.seeds[0], args.folds, arm.options)
            print(f"  {name:<12} P@5 {p:.3f}  R@5 {r:.3f}  (pool recall {pool:.3f})", flush=True)
    jobs = [(s, f, args.folds, args.round) for s in args.seeds for f in range(args.folds)]
    results = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(outer_fold, *job) for job in jobs]
        for done in as_completed(futures):
            r = done.result()
            results.append(r)
            print(
                f"[{time.perf_counter() - t0:.0f} s] seed {r['seed']} fold {r['fold']}: chosen {r['chosen']}",
                flush=True,
            )
    results.sort(key=lambda r: (r["seed"], r["fold"]))
    arm_names = list(arms(args.round))
    nested_rows = ["nested", "nested_r2"] if args.round >= 7 else ["nested"]
    per_seed: dict[str, dict[int, tuple[float, float]]] = {n: {} for n in [*arm_names, *nested_rows]}
    for seed in args.seeds:
        rows = [r for r in results if r["seed"] == seed]
        for n in arm_names:
            per_seed[n][seed] = _scores([x for r in rows for x in r["outer"][n]])
        per_seed["nested"][seed] = _scores([x for r in rows for x in r["outer"][r["chosen"]]])
        if "nested_r2" in per_seed:
            per_seed["nested_r2"][seed] = _scores([x for r in rows for x in r["outer"][r["chosen_r2"]]])
        print(f"seed {seed}: chosen per outer fold " + ", ".join(r["chosen"] for r in rows))
        for r in rows:
            print(f"  fold {r['fold']} inner R@5 " + "  ".join(f"{n} {v:.3f}" for n, v in r["inner"].items()))
    print(f"\nouter folds, P@{K} / R@{K}, median [min–max] over seeds {args.seeds}")
    summary: dict[str, Any] = {}
    for n, by_seed in per_seed.items():
        ps = [p for p, _ in by_seed.values()]
        rs = [r for _, r in by_seed.values()]
        summary[n] = {"precision_at_5": [round(p, 4) for p in ps], "recall_at_5": [round(r, 4) for r in rs]}
        label = {"nested": "NESTED (honest)", "nested_r2": "NESTED, round 2's 8"}.get(n, f"fixed {n}")
        print(
            f"{label:<22} P@5 {statistics.median(ps):.3f} [{min(ps):.3f}–{max(ps):.3f}]  "
            f"R@5 {statistics.median(rs):.3f} [{min(rs):.3f}–{max(rs):.3f}]"
        )
    ref = per_seed[reference]
    print(f"\npaired against {reference}, per seed {args.seeds} (R@5 difference; P@5 difference)")
    for n, by_seed in per_seed.items():
        if n == reference:
            continue
        dr = [by_seed[s][1] - ref[s][1] for s in args.seeds]
        dp = [by_seed[s][0] - ref[s][0] for s in args.seeds]
        print(f"  {n:<20} R@5 " + " ".join(f"{d:+.3f}" for d in dr) + "   P@5 " + " ".join(f"{d:+.3f}" for d in dp))
    adoption = None
    if args.round >= 7:
        # Rounds 7-10's rule (bench/RESULTS.md): nested R@5 median >= reference + .010, P@5 median not lower,
        # R@5 higher in at least 2 of the 3 seeds; the reference is round 2's nested choice on the same folds.
        new, ref2 = per_seed["nested"], per_seed["nested_r2"]
        print(f"\nround {args.round} against round 2's nested choice, per seed {args.seeds}")
        for n in ("nested", *NEW_ARMS[args.round], "feat_rate"):
            dr = [per_seed[n][s][1] - ref2[s][1] for s in args.seeds]
            dp = [per_seed[n][s][0] - ref2[s][0] for s in args.seeds]
            print(f"  {n:<20} R@5 " + " ".join(f"{d:+.3f}" for d in dr) + "   P@5 " + " ".join(f"{d:+.3f}" for d in dp))
        r_gain = statistics.median(new[s][1] for s in args.seeds) - statistics.median(ref2[s][1] for s in args.seeds)
        p_gain = statistics.median(new[s][0] for s in args.seeds) - statistics.median(ref2[s][0] for s in args.seeds)
        wins = sum(new[s][1] > ref2[s][1] for s in args.seeds)
        adoption = {
            "recall_median_gain": round(r_gain, 4),
            "precision_median_gain": round(p_gain, 4),
            "seeds_higher": wins,
            "adopt": bool(r_gain >= 0.010 - 1e-9 and p_gain >= -1e-9 and wins >= 2),
        }
        print("adoption rule:", adoption)
    chosen = collections.Counter(r["chosen"] for r in results)
    nested_r = statistics.median(summary["nested"]["recall_at_5"])
    v1_r = statistics.median(summary[reference]["recall_at_5"])
    print(f"\n{time.perf_counter() - t0:.0f} s in all")
    print(
        json.dumps(
            {
                "ratio": round(nested_r / v1_r, 3) if v1_r else None,
                "precision_at_5": statistics.median(summary["nested"]["precision_at_5"]),
                "recall_at_5": nested_r,
                "n": len(records),
                "seeds": args.seeds,
                "chosen": dict(chosen),
                "arms": summary,
                "round": args.round,
                "adoption": adoption,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
