"""Content tagging, honest numbers: the pre-registered candidate/ranker variants under outer k-fold
cross-validation (the ranker trained on inner folds of each outer training part, exactly as
``manage.py evaluate_tags --cv`` does), several seeds, plus the candidate-pool diagnosis.

No database: the vocabulary comes from the VideoTag file (a repeated name is one tag, as
``import_tags`` does) and is embedded with the tagging encoder, the records from KuaiMod dev joined
with the hand tags by pid; the code path is ``evaluation.cross_validate`` → ``ranking.generate`` /
``ranking.rank``, the functions the media worker runs. Embeddings are cached under ``var/`` (keyed by
the encoder and the texts), so a second run only costs the ranking.

Variants (fixed before the first run; none is chosen on these numbers, all are reported):
  V0 baseline  — the candidates as they were (text, e5 top 30, similar, classifiers, prior top 10)
  V1 full      — the app's defaults: + title embedding, + related tags (co-occurrence and tag-space
                 neighbours of text hits), + hashtag feature, e5 top 50
  V2 no-title  — V1 without the title's embedding (no second encoder call)
  V3 no-related— V1 without the related source
  V5 app       — V1's candidates, the ranker reading six more features (text match covered by a
                 longer tag match, one-character name, per-text z-scored cosines, hub-centred cosine,
                 the tag's acceptance rate): arm ``feat_rate`` of ``bench/tagging_nested.py`` (nested CV),
                 the app's default since round 2.
                 V0–V3 keep the 20 features the ranker read before (``_features_v1``).
V4 (each caption / speech segment embedded, max cosine per tag; added after V0–V3, reported, not adopted)
is closed: its numbers (bench/RESULTS.md) came from this script as of 4a621de; the per-segment view left
the code with rounds 3-5 of ``bench/tagging_nested.py`` (last version with V4: 2457661).

Pool recall: for each source, the share of gold tags among its top 5 / 20 / 50 / all candidates
(the embedding source over the whole vocabulary), and the merged pool's.

    .venv/bin/python bench/tagging_cv.py [--folds 5] [--seeds 0 1 2]

The last line printed is one JSON object (``ratio`` = median V5 (the app) recall@5 ÷ median V1's, or
V0's when V1 is not run).

    .venv/bin/python bench/tagging_cv.py --variants V1 V5   # the headline pair, ~2 min on a quiet machine
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
SHARED = next((p for p in (_ROOT.parent / "shared", _ROOT.parent.parent / "shared") if p.exists()), _ROOT / "shared")
VOCAB = SHARED / "datasets" / "videotag" / "label_3396.txt"
TAGS = SHARED / "datasets" / "videotag" / "kuaimod_dev_tags.jsonl"
DEV = SHARED / "datasets" / "kuaimod" / "dev.jsonl"
CACHE = _ROOT / "var" / "bench_cache"


def _cached_encode(texts: list[str], encode: Any, name: str) -> np.ndarray:
    key = hashlib.sha256((name + "\x00" + "\x01".join(texts)).encode()).hexdigest()[:20]
    path = CACHE / f"tagging_{key}.npy"
    if path.exists():
        return np.load(path)
    out = np.asarray(encode(texts), dtype=np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


# The features the ranker read before issue 16's second round (V0–V3's ranker).
def _features_v1() -> tuple[str, ...]:
    from moderation.tagging import ranking

    return tuple(ranking.FEATURES[: ranking.FEATURES.index("text_covered")])


def load(vocab_file: Path, records_file: Path, tags_file: Path) -> tuple[Any, list[Any]]:
    from moderation.tagging import encoder, evaluation, ranking
    from moderation.tagging.text import normalise

    names: list[str] = []
    seen: set[str] = set()
    for line in vocab_file.read_text(encoding="utf-8").splitlines():
        name = line.strip()
        if name and name not in seen:
            seen.add(name)
            names.append(name)
    ids = list(range(1, len(names) + 1))
    lexicon: dict[str, int] = {}
    for tag_id, name in zip(ids, names, strict=True):
        lexicon.setdefault(normalise(name), tag_id)
    embeddings = _cached_encode(names, encoder.encode, encoder.ENCODER_NAME)
    vocab = ranking.Vocabulary(ids, names, lexicon, embeddings, max(len(k) for k in lexicon))
    tags_by_pid = {}
    for line in tags_file.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        tags_by_pid[str(obj["pid"])] = obj["tags"]
    records = evaluation.load_records(records_file, vocab, tags_by_pid=tags_by_pid).records
    vectors = _cached_encode([r.text or " " for r in records], encoder.encode, encoder.ENCODER_NAME)
    for r, v in zip(records, vectors, strict=True):
        r.vector = v
    titled = [r for r in records if r.title]
    tv = _cached_encode([r.title for r in titled], encoder.encode, encoder.ENCODER_NAME)
    for r, v in zip(titled, tv, strict=True):
        r.title_vector = v
    # The hashtag view's phrases (round 7 of bench/tagging_nested.py; ``generate`` computes its features only).
    phrases = [p for r in records for p in r.hashtags]
    if phrases:
        pv = _cached_encode(phrases, encoder.encode, encoder.ENCODER_NAME)
        at = 0
        for r in records:
            r.hashtag_vectors = pv[at : at + len(r.hashtags)] if r.hashtags else None
            at += len(r.hashtags)
    return vocab, records


def pool_recall(records: list[Any], vocab: Any, *, folds: int, seed: int, options: Any) -> dict[str, list[float]]:
    """Share of gold tags among each source's top 5 / 20 / 50 / all (outer folds, as in the CV)."""
    from moderation.tagging import evaluation, ranking

    cuts = (5, 20, 50, None)
    hits: dict[str, list[int]] = {}
    total = 0
    for held in evaluation._folds(len(records), folds, seed):
        held_set = {int(i) for i in held}
        train = [r for i, r in enumerate(records) if i not in held_set]
        know = evaluation.learn(train)
        for i in held:
            r = records[int(i)]
            cands = evaluation.candidates_for(r, vocab, know, options)
            total += len(r.gold)
            lists = {
                s: [c.tag_id for c in sorted((c for c in cands.values() if s in c.scores), key=lambda c: -c.scores[s])]
                for s in ranking.SOURCES
                if s != "vlm"
            }
            cos = vocab.embeddings @ r.vector
            if options.title and r.title_vector is not None:
                cos = np.maximum(cos, vocab.embeddings @ r.title_vector)
            lists["embedding (whole vocabulary)"] = [vocab.tag_ids[j] for j in np.argsort(-cos)]
            lists["prior"] = [t for t, _ in sorted(know.prior.items(), key=lambda kv: (-kv[1], kv[0]))]
            lists["pool, ordered by the weighted sum"] = [c.tag_id for c in ranking.rank(cands, None)]
            for s, ranked in lists.items():
                row = hits.setdefault(s, [0] * len(cuts))
                for j, k in enumerate(cuts):
                    row[j] += len(set(ranked[:k] if k else ranked) & r.gold)
    return {s: [round(h / total, 3) for h in row] for s, row in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--variants", nargs="+", help="names' first words, e.g. V1 V5 (default: all)")
    args = parser.parse_args()

    from moderation.tagging import evaluation, ranking

    t0 = time.perf_counter()
    vocab, records = load(VOCAB, DEV, TAGS)
    print(f"{len(vocab.tag_ids)} tags, {len(records)} tagged records ({time.perf_counter() - t0:.0f} s to load)")
    v1 = ranking.Options(ranker_features=_features_v1())
    variants = {
        "V0 baseline": dataclasses.replace(v1, embedding_top=30, title=False, related=False, hashtag=False),
        "V1 full (round 1 app)": v1,
        "V2 no title embedding": dataclasses.replace(v1, title=False),
        "V3 no related source": dataclasses.replace(v1, related=False),
        "V5 feat_rate (the app's ranker until round 10)": ranking.Options(),
        "V6 app (round 10: + the wide neighbourhood)": ranking.APP_OPTIONS,
    }
    if args.variants:
        variants = {n: o for n, o in variants.items() if n.split()[0] in args.variants}
    k = args.k
    results: dict[str, list[dict[str, Any]]] = {}
    for name, options in variants.items():
        for seed in args.seeds:
            t = time.perf_counter()
            scored = evaluation.cross_validate(records, vocab, folds=args.folds, seed=seed, options=options)
            m = evaluation.metrics(scored, k)
            results.setdefault(name, []).append(m)
            print(
                f"{name:<24} seed {seed}: P@{k} {m[f'precision_at_{k}']:.3f}  R@{k} {m[f'recall_at_{k}']:.3f}  "
                f"GAP@20 {m['gap_at_20']:.3f}  ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )

    def med(name: str, key: str, src: str | None = None) -> tuple[float, float, float]:
        vals = [(m["per_source"][src] if src else m)[key] for m in results[name]]
        return statistics.median(vals), min(vals), max(vals)

    print(f"\nvariant (median [min–max] over seeds {args.seeds})")
    for name in variants:
        cells = [med(name, key) for key in (f"precision_at_{k}", f"recall_at_{k}", "gap_at_20")]
        print(f"{name:<24} " + "  ".join(f"{a:.3f} [{b:.3f}–{c:.3f}]" for a, b, c in cells))
    app = next(n for n in variants if n.startswith("V5")) if any(n.startswith("V5") for n in variants) else None
    ref = next((n for n in variants if n.startswith("V1")), None) or next(
        (n for n in variants if n.startswith("V0")), None
    )
    if app:
        print(f"\nper source, {app} (median [min–max])")
        for src in ranking.SOURCES:
            cells = [med(app, key, src) for key in (f"precision_at_{k}", f"recall_at_{k}", "gap_at_20")]
            print(f"{src:<24} " + "  ".join(f"{a:.3f} [{b:.3f}–{c:.3f}]" for a, b, c in cells))
    pools = {}
    for name in [n for n in variants if n.split()[0] in ("V0", "V5")]:
        pools[name] = pool_recall(records, vocab, folds=args.folds, seed=args.seeds[0], options=variants[name])
        print(f"\ncandidate-pool recall, {name}, seed {args.seeds[0]}: top 5 / 20 / 50 / all")
        for src, row in pools[name].items():
            print(f"{src:<32} " + " / ".join(f"{x:.3f}" for x in row))
    r0 = med(ref, f"recall_at_{k}")[0] if ref else 0.0
    r1 = med(app, f"recall_at_{k}")[0] if app else 0.0
    summary = {
        "ratio": round(r1 / r0, 3) if r0 and r1 else None,
        "reference": ref,
        "n": len(records),
        "seeds": args.seeds,
        "variants": {
            name: {key: [m[key] for m in ms] for key in (f"precision_at_{k}", f"recall_at_{k}", "gap_at_20")}
            for name, ms in results.items()
        },
        "pool_recall_5_20_50_all": pools,
    }
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
