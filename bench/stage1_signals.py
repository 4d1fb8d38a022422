"""Do signals beside the text earn a place in stage 1? Nested CV over the KuaiMod dev records (round 4).

``selection.SIGNAL_CANDIDATES`` (written down in bench/RESULTS.md before any was run) add one stacked
field each to stacked-char12's four TF-IDF fields:

* ``tags``: the tagging wing's zero-shot candidate tag names (``ranking.generate`` over the 3,386-tag
  vocabulary with the app's options and no learned sources; sources ``text`` and ``embedding``), a bag of
  whole-name tokens;
* ``knn``: the vote of the k nearest training records by cosine of the e5 text embedding (the vector the
  app stores per video in ``VideoTagState.embedding``);
* ``lp``: label spreading on that kNN graph.

Every record goes through ``stage1_input`` with its bundle's ``text_embedding`` and ``tag_names`` set, as
a live video's would be. For R repeats of outer stratified K-fold (the folds of ``evaluate --cv K --nested
--seed S``) every candidate's binary head is fitted on each outer training part and the arms choose on its
inner folds only (``choose_candidate``): ``text`` (``CANDIDATES``, today's stage 1), ``text+signals``
(``CANDIDATES`` + all three) and ``text+<signal>`` (``CANDIDATES`` + one). Scored on the outer folds:
binary accuracy, paired per seed against ``text``, and the cascade at each of ``REPORT_TARGETS``.

    .venv/bin/python bench/stage1_signals.py [--repeats 3] [--folds 5] [--jobs N]

Embeddings (401 record texts, 401 titles, 3,386 tag names) are cached under ``var/bench_cache`` (keyed by
encoder and texts; about 10 min to compute on a loaded machine, seconds when cached).
Last line: one JSON object, ``ratio`` first = median accuracy of ``text+signals`` ÷ median of ``text``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from _common import KUAIMOD_DEV, django_setup
from stage1_encoders import fit_outer_folds, seed_row, summary
from tagging_cv import VOCAB, _cached_encode


def tag_vocabulary(path: Path) -> Any:
    """The vocabulary as ``import_tags`` would store it (a repeated name is one tag), embedded with e5."""
    from moderation.tagging import encoder, ranking
    from moderation.tagging.text import normalise

    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and line.strip() not in names:
            names.append(line.strip())
    ids = list(range(1, len(names) + 1))
    lexicon: dict[str, int] = {}
    for tag_id, name in zip(ids, names, strict=True):
        lexicon.setdefault(normalise(name), tag_id)
    embeddings = _cached_encode(names, encoder.encode, encoder.ENCODER_NAME)
    return ranking.Vocabulary(ids, names, lexicon, embeddings, max(len(k) for k in lexicon))


def signal_inputs(records: list[Any], vocab: Any) -> list[Any]:
    """Each record's stage-1 input with the stored-per-video signals a live video has: its e5 text embedding
    and the tagging wing's zero-shot tag names."""
    import numpy as np

    from moderation.inference.kuaimod import kuaimod_bundle
    from moderation.inference.stage1.inputs import stage1_input, stage1_tag_names
    from moderation.tagging import encoder, ranking
    from moderation.tagging.text import embedding_text, split_segments, title_text

    segments = [split_segments(title=r.title, ocr=r.ocr, asr=r.asr) for r in records]
    texts = [embedding_text(s) for s in segments]
    titles = [title_text(s) for s in segments]
    vectors = _cached_encode(texts, encoder.encode, encoder.ENCODER_NAME)
    title_vectors = iter(_cached_encode([t for t in titles if t], encoder.encode, encoder.ENCODER_NAME))
    index = dict(zip(vocab.tag_ids, vocab.names, strict=True))
    items = []
    with ranking.single_threaded_blas():
        for record, segs, text, title, vector in zip(records, segments, texts, titles, vectors, strict=True):
            title_vector = next(title_vectors) if title else None
            cands = ranking.generate(
                segments=segs, vector=vector if text else None, vocab=vocab, title_vector=title_vector
            )
            names = stage1_tag_names((index[c.tag_id], s) for c in cands.values() for s in c.scores)
            bundle = dataclasses.replace(
                kuaimod_bundle(record),
                text_embedding=[float(x) for x in np.asarray(vector)] if text else None,
                tag_names=list(names),
            )
            items.append(stage1_input(bundle))
    return items


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=KUAIMOD_DEV)
    parser.add_argument("--vocabulary", type=Path, default=VOCAB)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the independent (repeat, outer fold) fits")
    args = parser.parse_args()
    django_setup()
    import numpy as np

    from moderation.inference.kuaimod import kuaimod_read
    from moderation.inference.stage1.selection import (
        CANDIDATES,
        REPORT_TARGETS,
        SIGNAL_CANDIDATES,
        stratified_splits,
    )
    from moderation.policies.seed import SAFE_LABEL

    started = time.perf_counter()
    records = kuaimod_read(args.data).records
    items = signal_inputs(records, tag_vocabulary(args.vocabulary))
    prepared = round(time.perf_counter() - started, 1)
    n_tags = [len(item.tags) for item in items]
    print(f"inputs ready in {prepared} s; tag names per record: median {int(np.median(n_tags))}", flush=True)
    tags = [r.tag for r in records]
    y = np.array([t != SAFE_LABEL for t in tags], dtype=int)
    text_names = [c.name for c in CANDIDATES]
    arms = {"text": text_names, "text+signals": text_names + [c.name for c in SIGNAL_CANDIDATES]}
    for c in SIGNAL_CANDIDATES:
        arms["text+" + c.name.split("+")[-1]] = [*text_names, c.name]
    configs = [*CANDIDATES, *SIGNAL_CANDIDATES]
    tasks = [
        (seed, k, train, test)
        for seed in range(args.repeats)
        for k, (train, test) in enumerate(stratified_splits(tags, args.folds, seed))
    ]
    fit_started = time.perf_counter()
    runs = fit_outer_folds(items, y, configs, REPORT_TARGETS, tasks, args.jobs)
    per_repeat: list[dict[str, Any]] = []
    for seed in range(args.repeats):
        row = seed_row(seed, tasks, runs, arms, y, REPORT_TARGETS)
        del row["p"]
        per_repeat.append(row)

    def cascade_summary(arm: str, t: float) -> dict[str, Any]:
        cells = [r[arm]["cascade"][str(t)] for r in per_repeat]
        accuracies = [c["auto_accuracy"] for c in cells if c["auto_accuracy"] is not None]
        return {
            "auto_share": summary([c["auto_share"] for c in cells]),
            "auto_accuracy": summary(accuracies) if accuracies else None,
            "seeds_below_target": sum(1 for c in cells if c["auto_accuracy"] is None or c["auto_accuracy"] < t),
        }

    result = {
        arm: {
            "binary_accuracy": summary([r[arm]["binary_accuracy"] for r in per_repeat]),
            "paired_vs_text": [round(r[arm]["binary_accuracy"] - r["text"]["binary_accuracy"], 4) for r in per_repeat],
            "cascade": {str(t): cascade_summary(arm, t) for t in REPORT_TARGETS},
            "chosen": [c for r in per_repeat for c in r[arm]["chosen"]],
        }
        for arm in arms
    }

    def supported(arm: str) -> bool:
        """The pre-registered rule: beats text on every seed, and the .92 cascade misses its target on no
        more seeds than text-only's."""
        below = result[arm]["cascade"]["0.92"]["seeds_below_target"]
        return (
            all(d > 0 for d in result[arm]["paired_vs_text"])
            and below <= result["text"]["cascade"]["0.92"]["seeds_below_target"]
        )

    adopted = [
        c.name for c in SIGNAL_CANDIDATES if supported("text+" + c.name.split("+")[-1]) and supported("text+signals")
    ]
    out = {
        "ratio": round(
            result["text+signals"]["binary_accuracy"]["median"] / result["text"]["binary_accuracy"]["median"], 4
        ),
        "binary_accuracy_text": result["text"]["binary_accuracy"],
        "binary_accuracy_text_signals": result["text+signals"]["binary_accuracy"],
        "paired_difference_per_seed": result["text+signals"]["paired_vs_text"],
        "adopted": adopted,
        "arms": result,
        "fixed_candidates": {c.name: summary([r["fixed"][c.name] for r in per_repeat]) for c in configs},
        "tag_names_per_record_median": float(np.median(n_tags)),
        "prepare_seconds": prepared,
        "fit_seconds": round(time.perf_counter() - fit_started, 1),
        "jobs": args.jobs,
        "repeats": args.repeats,
        "folds": args.folds,
        "n": len(items),
        "data": args.data.name,
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
