"""Content tagging, nested model selection for the ranker (issue 16, rounds 2-5; round 6 closed, below).

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

Round 3 (``--round 3``; written down after the outer-fold error analysis ``--errors`` and
inner-fold probes of two outer training parts, before any nested number): ``feat_rate`` (round 2's app,
the reference) and
  struct         feat_rate + five tag-space features from the vocabulary alone (``ranking.STRUCTURE_FEATURES``:
                 the cosine smoothed over the tag's 10 nearest tags, z-scored; its rank in that view; the
                 tag's density; how many other names contain its name; its cosine minus the text's best)
  struct_wide    struct, and a wider pool: e5 top 100 (was 50), title top 40 (was 20), smoothed view top 30
  ens            struct + the second encoder (multilingual USE v3): the two encoders' mean z-score proposes
                 50 tags (whole text and title), four features (``ranking.ENSEMBLE_FEATURES``)
  ens_c01        ens with C = 0.1
  ens_wide       ens with struct_wide's wider pool
  ens_sim        ens, similar videos voting by exp((cosine - best) / 0.02) instead of by cosine
  pair           feat_rate's features, pairwise objective (gold vs other candidates of the same record)
  ens_pair       ens, pairwise objective

Round 4 (``--round 4``; the brief: turn the pool into a better top 5 by the *ranking*).
Probed only on the inner folds of the training parts of seed 0's outer folds 0 and 1 (as round 3; those
inner folds hold records that other outer folds score, a small leak, said in bench/RESULTS.md), then these five
were written down before any nested number: ``feat_rate`` (the app, the reference) and
  list           feat_rate's features, a listwise objective (``ranking.fit_listwise``: per-video softmax
                 over its candidates, the gold tags sharing the target, every video weighing the same),
                 C = 0.1 (C = 1 lost .02 on one probe part; .1 and .03 were level)
  list_prior     list, its L2 penalty pulling towards the hand-weighted sum's direction (scaled by a 1-D
                 fit) instead of towards 0: strong regularisation towards the untrained order, C = 0.1
  cooc_list      list + ``cooccur_top`` (a tag's highest P(tag | seed) over the 5 best candidates of the
                 hand-weighted order, times that seed's score: co-tags of a confident candidate, generic
                 parents such as 美食 beside 火锅 learned from the training part's tags)
  rrf            no trained combination: reciprocal-rank fusion (k = 60) of feat_rate's order (one voter)
                 and six sources' own orders (text, e5 text, e5 title, similar videos, co-tags, prior)
Adoption rule (written down with the arms): the app's ranker changes only if the nested R@5 median of
round 4 is above the fixed ``feat_rate`` row's median *and* above it in at least two of the three seeds;
then the app takes the arm that the same procedure picks on all 88 records (best inner-CV recall@5).

Round 5 (``--round 5``, the default; written down after round 4's nested run, from a diagnostic and
the same two inner probes): the ranking features cap what re-weighting can do (``--ceiling``), so new
information: an *adapter* (``ranking.fit_adapter``), a ridge map from a video's e5 vector to the mean
e5 vector of its tags, learned on the training part and pulled towards the identity (λ = 1, fixed:
λ .3–10 all lay within .03 of each other on a diagnostic over all 88 records, zero-shot only). Over the
whole vocabulary it lifts e5's own zero-shot recall@5 .262 → .355 and @100 .636 → .77 (seed 0, outer
folds, no ranker): it learns which tags this team uses from videos, and carries that to tags it never
saw. ``feat_rate`` (the app, the reference) and
  adapt_feat       feat_rate + three features (``ranking.ADAPTER_FEATURES``: the adapter's z-scored cosine
                   for the text and the title, its rank), no new candidates
  adapt_feat_list  adapt_feat with round 4's listwise objective (C = 0.1)
  adapt_list       adapt_feat_list, and the adapter's 30 best tags join the pool (pool .772 → .801)
Adoption rule: as round 4's.

Round 6 (recall sources: the chunk view ``chunk`` and the head neighbourhood ``head``, after ``--recall``'s
diagnosis, which stays here) is closed: nested R@5 .494 against ``feat_rate``'s .518, not adopted
(bench/RESULTS.md). Its arms and their ranker options (``Options.chunk_top`` / ``head_near``) were removed;
the numbers came from ``--round 6`` of this script as of commit 4c712bd (``git show 4c712bd:bench/tagging_nested.py``; its last version with round 6 is bf17c5b).

    .venv/bin/python bench/tagging_nested.py [--round 5] [--recall] [--pool] [--seeds 0 1 2] [--folds 5] [--jobs 2] [--errors]

Embeddings (both encoders) come from ``bench/tagging_cv.py``'s cache under ``var/`` (computed once, ~1 min).
Each outer fold prints when it is done. The last line printed is one JSON object: ``ratio`` = nested
recall@5 median ÷ the reference arm's outer median (round 2: v1; rounds 3-4: feat_rate).
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
from dataclasses import replace
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
sys.path.insert(0, str(_ROOT / "bench"))

K = 5


def arms() -> dict[str, Any]:
    return arms_of(ROUND)


def arms_of(round_: int) -> dict[str, Any]:
    from moderation.tagging import ranking

    feat = tuple(ranking.FEATURES_V2)
    v1 = tuple(ranking.FEATURES_V1)
    rate = (*feat, "accept_rate")
    round2 = {
        "v1": ranking.Options(ranker_features=v1),
        "feat": ranking.Options(ranker_features=feat),
        "feat_c01": ranking.Options(ranker_features=feat, ranker_c=0.1),
        "v1_name": ranking.Options(ranker_features=v1, dedup="name"),
        "feat_name": ranking.Options(ranker_features=feat, dedup="name"),
        "feat_namecos": ranking.Options(ranker_features=feat, dedup="name+cos"),
        "feat_rate": ranking.Options(ranker_features=rate),
        "feat_rate_c01": ranking.Options(ranker_features=rate, ranker_c=0.1),
    }
    # Round 3 (issue 16, third session): written down after the outer-fold error analysis
    # (``--errors``) and before any nested number; ``feat_rate`` (round 2's app) is the reference.
    struct = (*rate, *ranking.STRUCTURE_FEATURES)
    ens = (*struct, *ranking.ENSEMBLE_FEATURES)
    wide = {"embedding_top": 100, "title_top": 40, "smooth_top": ranking.SMOOTH_TOP}
    round3 = {
        "feat_rate": round2["feat_rate"],
        "struct": ranking.Options(ranker_features=struct),
        "struct_wide": ranking.Options(ranker_features=struct, **wide),
        "ens": ranking.Options(ranker_features=ens, ensemble_top=50),
        "ens_c01": ranking.Options(ranker_features=ens, ensemble_top=50, ranker_c=0.1),
        "ens_wide": ranking.Options(ranker_features=ens, ensemble_top=50, **wide),
        "ens_sim": ranking.Options(ranker_features=ens, ensemble_top=50, similar_temperature=0.02),
        "pair": ranking.Options(ranker_features=rate, objective="pairwise"),
        "ens_pair": ranking.Options(ranker_features=ens, ensemble_top=50, objective="pairwise"),
    }
    # Round 4 (issue 16, fourth session): the ranking of the app's pool (no new candidates).
    cooc = (*rate, "cooccur_top")
    round4 = {
        "feat_rate": round2["feat_rate"],
        "list": ranking.Options(ranker_features=rate, objective="listwise", ranker_c=0.1),
        "list_prior": ranking.Options(ranker_features=rate, objective="listwise_prior", ranker_c=0.1),
        "cooc_list": ranking.Options(ranker_features=cooc, objective="listwise", ranker_c=0.1),
        "rrf": ranking.Options(ranker_features=rate, fusion="rrf"),
    }
    # Round 5: the adapter (a learned map from video vectors to tag vectors).
    adapt = (*rate, *ranking.ADAPTER_FEATURES)
    round5 = {
        "feat_rate": round2["feat_rate"],
        "adapt_feat": ranking.Options(ranker_features=adapt),
        "adapt_feat_list": ranking.Options(ranker_features=adapt, objective="listwise", ranker_c=0.1),
        "adapt_list": ranking.Options(ranker_features=adapt, objective="listwise", ranker_c=0.1, adapter_top=30),
    }
    return {2: round2, 3: round3, 4: round4, 5: round5}[round_]


ROUND = 5


_STATE: dict[str, Any] = {}


def _load() -> tuple[Any, list[Any]]:
    if "data" not in _STATE:
        import tagging_cv

        _STATE["data"] = tagging_cv.load(tagging_cv.VOCAB, tagging_cv.DEV, tagging_cv.TAGS)
    return _STATE["data"]  # type: ignore[no-any-return]


def outer_fold(seed: int, fold: int, folds: int) -> dict[str, Any]:
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
        for name, options in arms().items():
            scored = evaluation.cross_validate(train, vocab, folds=folds, seed=1000 + seed * 10 + fold, options=options)
            inner[name] = evaluation.metrics(scored, K)[f"recall_at_{K}"]
            out = evaluation.run(train, test, vocab, seed=seed, options=options)
            outer[name] = [([t for t, _ in s.ranked[:20]], sorted(s.gold)) for s in out]
    names = list(inner)
    chosen = max(names, key=lambda n: (inner[n], -names.index(n)))
    return {"seed": seed, "fold": fold, "inner": inner, "chosen": chosen, "outer": outer}


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


def errors(seed: int, folds: int, options: Any) -> None:
    """Where the gold tags rank and what fills the top 5 instead (outer folds, one seed)."""
    from moderation.tagging import evaluation, ranking

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
            ranked = ranking.rank(
                cands, model, features=options.ranker_features, dedup=options.dedup, vocab=vocab, fusion=options.fusion
            )
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
    if options.objective.startswith("listwise"):
        model = ranking.fit_listwise(x, y, groups, c=100.0)
    else:
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
    co-occurrence from the ranker's top 10, and the second encoder's view."""
    import numpy as np

    from moderation.tagging import ranking
    from moderation.tagging.text import normalise

    index = vocab.index
    i = index[g]
    name = names[g]
    text = normalise(" ".join(seg.text for seg in r.segments))
    cos = vocab.embeddings @ r.vector
    if r.title_vector is not None:
        cos = np.maximum(cos, vocab.embeddings @ r.title_vector)
    e5_rank = int((cos > cos[i]).sum())
    ens_rank = None
    if vocab.embeddings2 is not None and r.vector2 is not None:
        z = ranking._zscores(vocab.embeddings @ r.vector) + ranking._zscores(vocab.embeddings2 @ r.vector2)  # type: ignore[operator]
        ens_rank = int((z > z[i]).sum())
    structure = ranking.tag_structure(vocab)
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
        "is_e5+USE rank < 100": ens_rank is not None and ens_rank < 100,
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
    options = arms_of(2)["feat_rate"]
    names = dict(zip(vocab.tag_ids, vocab.names, strict=True))
    index = vocab.index
    structure = ranking.tag_structure(vocab)
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


def pool_sizes(seed: int, folds: int) -> None:
    """Each arm's candidate pool on the outer folds of one seed: candidates a video, the share of gold
    tags in the pool, and the gold tags an arm's pool holds that the app's (``feat_rate``) lacks."""
    import numpy as np

    from moderation.tagging import evaluation

    vocab, records = _load()
    pools: dict[str, list[set[int]]] = {}
    for name, options in arms().items():
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
            f"gold tags the app's pool lacks {extra}"
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
    parser.add_argument("--round", type=int, choices=(2, 3, 4, 5), default=5, help="which round's arms (default 5)")
    args = parser.parse_args()
    global ROUND
    ROUND = args.round
    reference = "v1" if ROUND == 2 else "feat_rate"

    t0 = time.perf_counter()
    vocab, records = _load()
    print(f"{len(vocab.tag_ids)} tags, {len(records)} tagged records ({time.perf_counter() - t0:.0f} s to load)")
    if args.recall:
        recall_diagnosis(args.seeds, args.folds)
        return
    if args.pool:
        pool_sizes(args.seeds[0], args.folds)
        return
    if args.errors:
        a = arms()
        for name in (
            ("v1", "feat")
            if ROUND == 2
            else ("feat_rate", "list")
            if ROUND == 4
            else ("adapt_list",)
            if ROUND == 5
            else ("feat_rate",)
        ):
            print(f"\nerror analysis, arm {name}, seed {args.seeds[0]}")
            errors(args.seeds[0], args.folds, a[name])
    if args.ceiling:
        print(f"\nin-sample ceiling (ranker fitted on the records it scores), seed {args.seeds[0]}")
        from moderation.tagging import ranking

        widest = ranking.Options(
            ranker_features=tuple(f for f in ranking.FEATURES if f != "cooccur_top"),
            ensemble_top=50,
            embedding_top=100,
            title_top=40,
            smooth_top=ranking.SMOOTH_TOP,
        )
        # and round 3's widest pool (ens_wide) with every feature, for how far a wider pool could go
        for name, options in {**arms(), "widest": widest, "widest_list": replace(widest, objective="listwise")}.items():
            if options.fusion != "none" or options.objective == "pairwise":
                continue
            p, r, pool = ceiling(args.seeds[0], args.folds, options)
            print(f"  {name:<12} P@5 {p:.3f}  R@5 {r:.3f}  (pool recall {pool:.3f})", flush=True)
    jobs = [(s, f, args.folds) for s in args.seeds for f in range(args.folds)]
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
    arm_names = list(arms())
    per_seed: dict[str, dict[int, tuple[float, float]]] = {n: {} for n in [*arm_names, "nested"]}
    for seed in args.seeds:
        rows = [r for r in results if r["seed"] == seed]
        for n in arm_names:
            per_seed[n][seed] = _scores([x for r in rows for x in r["outer"][n]])
        per_seed["nested"][seed] = _scores([x for r in rows for x in r["outer"][r["chosen"]]])
        print(f"seed {seed}: chosen per outer fold " + ", ".join(r["chosen"] for r in rows))
        for r in rows:
            print(f"  fold {r['fold']} inner R@5 " + "  ".join(f"{n} {v:.3f}" for n, v in r["inner"].items()))
    print(f"\nouter folds, P@{K} / R@{K}, median [min–max] over seeds {args.seeds}")
    summary: dict[str, Any] = {}
    for n, by_seed in per_seed.items():
        ps = [p for p, _ in by_seed.values()]
        rs = [r for _, r in by_seed.values()]
        summary[n] = {"precision_at_5": [round(p, 4) for p in ps], "recall_at_5": [round(r, 4) for r in rs]}
        label = "NESTED (honest)" if n == "nested" else f"fixed {n}"
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
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
