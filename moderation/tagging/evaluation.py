"""``manage.py evaluate_tags``: train what needs training on one JSONL file, score another (or
cross-validate one), report precision@k, recall@k and GAP@20 overall and per source.

Records are KuaiMod-style: ``title``, ``OCR`` and ``ASR`` (segments joined with ``|``), an optional
``description``, and ``tags`` (vocabulary names). Records without tags are skipped; tag names not
in the vocabulary are reported (and left out of the gold set), never a crash.

Training on the train records, without leaking a record into its own features: the ranker's
training rows for each train record are built from a prior, neighbours and per-tag classifiers
fitted on the *other* inner folds (5-fold), the way they will look for an unseen record.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moderation.files import operator_file_open
from moderation.tagging import ranking
from moderation.tagging.ranking import single_threaded_blas
from moderation.tagging.text import Segment, embedding_text, hashtag_phrases, split_segments, title_text
from workbench.text import storable_text

SOURCES = ranking.SOURCES
INNER_FOLDS = 5


@dataclass
class Record:
    line: int
    segments: list[Segment]
    gold: set[int]
    text: str
    vector: np.ndarray | None = None
    title: str = ""
    title_vector: np.ndarray | None = None
    hashtags: list[str] = field(default_factory=list)  # ``text.hashtag_phrases``
    hashtag_vectors: np.ndarray | None = None  # one row per phrase, when the options read the hashtag view


@dataclass
class LoadReport:
    records: list[Record] = field(default_factory=list)
    skipped_untagged: int = 0
    problems: list[str] = field(default_factory=list)
    unknown_tags: Counter[str] = field(default_factory=Counter)


def load_records(
    path: Path, vocab: ranking.Vocabulary, *, tags_by_pid: dict[str, list[str]] | None = None
) -> LoadReport:
    """Parse a JSONL file; bad lines and unknown tag names are reported, not raised."""
    report = LoadReport()
    by_name = {name: tag_id for name, tag_id in zip(vocab.names, vocab.tag_ids, strict=True)}
    with operator_file_open(path) as fh:  # a regular file only: a FIFO was waited on for ever
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = storable_text(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                report.problems.append(f"line {number}: not a JSON object ({type(exc).__name__})")
                continue
            if not isinstance(obj, dict):
                report.problems.append(f"line {number}: not a JSON object")
                continue
            tags = obj.get("tags")
            if tags_by_pid is not None and str(obj.get("pid")) in tags_by_pid:
                tags = tags_by_pid[str(obj.get("pid"))]
            if tags is None:
                tags = []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                report.problems.append(f"line {number}: 'tags' must be a list of tag names")
                continue
            fields = {}
            for key in ("title", "description", "OCR", "ASR"):
                value = obj.get(key, "")
                fields[key] = value if isinstance(value, str) else ""
            gold = set()
            for name in tags:
                tag_id = by_name.get(name.strip())
                if tag_id is None:
                    report.unknown_tags[name] += 1
                else:
                    gold.add(tag_id)
            if not gold:
                report.skipped_untagged += 1
                continue
            segments = split_segments(
                title=fields["title"], description=fields["description"], ocr=fields["OCR"], asr=fields["ASR"]
            )
            report.records.append(
                Record(
                    number,
                    segments,
                    gold,
                    embedding_text(segments),
                    title=title_text(segments),
                    hashtags=hashtag_phrases(segments),
                )
            )
    return report


def embed_records(records: Sequence[Record], encode: Callable[[list[str]], Any], *, hashtags: bool = False) -> None:
    """The whole text's vector and the title's (as the worker computes them for a video); with ``hashtags``
    also each hashtag phrase's (the hashtag view, ``ranking.Options.reads_hashtags``)."""
    todo = [r for r in records if r.vector is None]
    if todo:
        vectors = encode([r.text or " " for r in todo])
        for r, v in zip(todo, vectors, strict=True):
            r.vector = np.asarray(v, dtype=np.float32)
    titled = [r for r in records if r.title and r.title_vector is None]
    if titled:
        vectors = encode([r.title for r in titled])
        for r, v in zip(titled, vectors, strict=True):
            r.title_vector = np.asarray(v, dtype=np.float32)
    tagged = [r for r in records if hashtags and r.hashtags and r.hashtag_vectors is None]
    if tagged:
        vectors = np.asarray(encode([p for r in tagged for p in r.hashtags]), dtype=np.float32)
        at = 0
        for r in tagged:
            r.hashtag_vectors = vectors[at : at + len(r.hashtags)]
            at += len(r.hashtags)


@dataclass
class Knowledge:
    """What is learned from tagged records: prior counts, neighbour pool, per-tag classifiers,
    tag co-occurrence."""

    prior: dict[int, float]
    vectors: np.ndarray
    tag_lists: list[list[int]]
    classifiers: dict[int, ranking.LinearModel]
    cooccur: dict[int, dict[int, float]] = field(default_factory=dict)
    centre: np.ndarray | None = None
    rates: dict[int, float] = field(default_factory=dict)  # set by ``fit_ranker`` (out-of-fold outcomes)
    base_rate: float = 0.0


# Set by ``caching()`` (the nested benchmark): what ``learn`` and ``candidates_for`` computed, reused
# by every ranker arm that shares the candidate options (their results depend only on the training
# records, the record and those options).
_CACHE: dict[Any, Any] | None = None
_GENERATION_FIELDS = ("embedding_top", "title", "related", "hashtag", "hashtag_top", "wide_pool")


@contextmanager
def caching() -> Iterator[None]:
    global _CACHE
    previous, _CACHE = _CACHE, {}
    try:
        yield
    finally:
        _CACHE = previous


def _key(records: Sequence[Record]) -> tuple[int, ...]:
    return tuple(sorted(r.line for r in records))


def learn(records: Sequence[Record]) -> Knowledge:
    if _CACHE is not None:
        key = ("learn", _key(records))
        if key not in _CACHE:
            _CACHE[key] = _learn(records)
        know: Knowledge = _CACHE[key]
        return Knowledge(know.prior, know.vectors, know.tag_lists, know.classifiers, know.cooccur, know.centre)
    return _learn(records)


def _learn(records: Sequence[Record]) -> Knowledge:
    prior: Counter[int] = Counter()
    for r in records:
        prior.update(r.gold)
    vectors = (
        np.stack([r.vector for r in records if r.vector is not None])
        if records
        else np.zeros((0, 384), dtype=np.float32)
    )
    tag_lists = [sorted(r.gold) for r in records]
    return Knowledge(
        dict(prior),
        vectors,
        tag_lists,
        ranking.fit_classifiers(vectors, tag_lists),
        ranking.cooccurrence(tag_lists),
        vectors.mean(axis=0) if len(vectors) else None,
    )


def candidates_for(
    record: Record,
    vocab: ranking.Vocabulary,
    know: Knowledge,
    options: ranking.Options = ranking.Options(),
    *,
    train_key: tuple[int, ...] | None = None,
) -> dict[int, ranking.Candidate]:
    """One record's candidates from what ``know`` learned; with ``caching()`` and ``train_key`` (the
    training records' lines) computed once per record, training set and candidate options."""
    if _CACHE is None or train_key is None:
        return _with_wide_votes(_candidates_for(record, vocab, know, options), record, know, options)
    key = (
        "cands",
        train_key,
        record.line,
        tuple(getattr(options, f) for f in _GENERATION_FIELDS),
        options.similar_wide if options.wide_pool else 0,  # a wide pool is another pool; the feature alone is not
    )
    if key not in _CACHE:
        _CACHE[key] = _candidates_for(record, vocab, know, options)
    out: dict[int, ranking.Candidate] = {}
    for tag_id, c in _CACHE[key].items():
        copy = ranking.Candidate(c.tag_id, dict(c.features), c.sources, c.evidence, c.scores)
        copy.features["accept_rate"] = know.rates.get(tag_id, know.base_rate)
        out[tag_id] = copy
    if options.reads_evidence or options.reads_smooth_prior:
        # The cached rows may come from an arm that did not read them (the key is the pool's options only).
        ranking.context_features(out, _vocabulary(vocab, know), options)
    return _with_wide_votes(out, record, know, options)


def _with_wide_votes(
    cands: dict[int, ranking.Candidate], record: Record, know: Knowledge, options: ranking.Options
) -> dict[int, ranking.Candidate]:
    """Round 10's ``similar_wide`` feature where the options read it but keep the pool (``generate`` computed it
    where the wide neighbourhood also joins the pool): the same value either way, added after the cache."""
    if options.similar_wide and not options.wide_pool and record.vector is not None:
        wide = ranking.neighbours_from(record.vector, know.vectors, know.tag_lists, k=options.wide_neighbours)
        ranking.wide_similar(cands, ranking.wide_votes(wide, options.similar_wide))
    return cands


def _vocabulary(vocab: ranking.Vocabulary, know: Knowledge) -> ranking.Vocabulary:
    """``vocab`` with what ``know`` learned (prior, co-occurrence, centre, acceptance rates)."""
    return ranking.Vocabulary(
        vocab.tag_ids,
        vocab.names,
        vocab.lexicon,
        vocab.embeddings,
        vocab.max_len,
        know.prior,
        know.cooccur,
        know.centre,
        know.rates,
        know.base_rate,
    )


def _candidates_for(
    record: Record, vocab: ranking.Vocabulary, know: Knowledge, options: ranking.Options
) -> dict[int, ranking.Candidate]:
    v = _vocabulary(vocab, know)
    assert record.vector is not None
    return ranking.generate(
        segments=record.segments,
        vector=record.vector,
        vocab=v,
        neighbours=ranking.neighbours_from(record.vector, know.vectors, know.tag_lists),
        classifiers=know.classifiers,
        title_vector=record.title_vector,
        hashtag_vectors=record.hashtag_vectors,
        wide_neighbours=(
            ranking.neighbours_from(record.vector, know.vectors, know.tag_lists, k=options.wide_neighbours)
            if options.wide_pool
            else ()
        ),
        options=options,
    )


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(k)]


def fit_ranker(
    records: Sequence[Record],
    vocab: ranking.Vocabulary,
    *,
    seed: int = 0,
    options: ranking.Options = ranking.Options(),
) -> tuple[ranking.LinearModel | None, dict[int, float], float]:
    """The ranker (logistic regression on out-of-fold candidate features of the train records) and
    the tags' acceptance rates for scoring new records (from every out-of-fold candidate). Each
    fold's rows read rates from the other folds' rows only, as an unseen record would."""
    cols = [ranking.FEATURES.index(f) for f in options.ranker_features]
    k = min(INNER_FOLDS, len(records))
    if k < 2:
        return None, {}, 0.0
    folds: list[list[tuple[list[ranking.Candidate], np.ndarray]]] = []
    for held in _folds(len(records), k, seed):
        held_set = set(int(i) for i in held)
        part = [r for i, r in enumerate(records) if i not in held_set]
        know = learn(part)
        part_key = _key(part)
        rows = []
        for i in held:
            cands = list(candidates_for(records[int(i)], vocab, know, options, train_key=part_key).values())
            if cands:
                rows.append((cands, np.array([c.tag_id in records[int(i)].gold for c in cands], dtype=int)))
        folds.append(rows)

    def outcomes(skip: int | None) -> list[tuple[int, bool]]:
        return [
            (c.tag_id, bool(label))
            for f, rows in enumerate(folds)
            if f != skip
            for cands, y in rows
            for c, label in zip(cands, y, strict=True)
        ]

    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for f, rows in enumerate(folds):
        rates, base = ranking.acceptance_rates(outcomes(f))
        for cands, y in rows:
            for c in cands:
                c.features["accept_rate"] = rates.get(c.tag_id, base)
            xs.append(ranking.feature_matrix(cands)[:, cols])
            ys.append(y)
    rates, base = ranking.acceptance_rates(outcomes(None))
    if not xs:
        return None, rates, base
    x, y = np.vstack(xs), np.concatenate(ys)
    if y.min() == y.max():
        return None, rates, base
    if options.objective == "lambda":  # round 9's arm: each record's rows are one group
        return ranking.fit_lambdarank(xs, ys, c=options.ranker_c, seed=seed), rates, base
    return ranking.fit_linear(x, y, c=options.ranker_c, seed=seed), rates, base


@dataclass
class Scored:
    ranked: list[tuple[int, float]]  # overall ranking
    by_source: dict[str, list[tuple[int, float]]]
    gold: set[int]


def predict(
    records: Sequence[Record],
    vocab: ranking.Vocabulary,
    know: Knowledge,
    model: ranking.LinearModel | None,
    options: ranking.Options = ranking.Options(),
    *,
    train_key: tuple[int, ...] | None = None,
) -> list[Scored]:
    out: list[Scored] = []
    for r in records:
        cands = candidates_for(r, vocab, know, options, train_key=train_key)
        ranked = ranking.rank(cands, model, features=options.ranker_features)
        by_source = {
            s: sorted(((c.tag_id, c.scores[s]) for c in cands.values() if s in c.scores), key=lambda p: (-p[1], p[0]))
            for s in SOURCES
        }
        out.append(Scored([(c.tag_id, c.score) for c in ranked], by_source, r.gold))
    return out


def metrics(scored: Sequence[Scored], k: int) -> dict[str, Any]:
    def block(get: Callable[[Scored], list[tuple[int, float]]]) -> dict[str, float]:
        ps, rs = [], []
        for s in scored:
            p, r = ranking.precision_recall_at([t for t, _ in get(s)], s.gold, k)
            ps.append(p)
            rs.append(r)
        return {
            f"precision_at_{k}": round(float(np.mean(ps)) if ps else 0.0, 4),
            f"recall_at_{k}": round(float(np.mean(rs)) if rs else 0.0, 4),
            "gap_at_20": round(ranking.gap_at([(get(s), s.gold) for s in scored], 20), 4),
        }

    result: dict[str, Any] = block(lambda s: s.ranked)
    result["n"] = len(scored)
    result["per_source"] = {src: block(lambda s, src=src: s.by_source[src]) for src in SOURCES}  # type: ignore[misc]
    return result


def run(
    train: Sequence[Record],
    test: Sequence[Record],
    vocab: ranking.Vocabulary,
    *,
    seed: int = 0,
    options: ranking.Options = ranking.Options(),
) -> list[Scored]:
    with single_threaded_blas():
        model, rates, base = fit_ranker(train, vocab, seed=seed, options=options)
        know = learn(train)
        know.rates, know.base_rate = rates, base
        return predict(test, vocab, know, model, options, train_key=_key(train))


def cross_validate(
    records: Sequence[Record],
    vocab: ranking.Vocabulary,
    *,
    folds: int,
    seed: int,
    options: ranking.Options = ranking.Options(),
) -> list[Scored]:
    """Outer k-fold: every record scored once by a model that never saw it (the ranker's own inner
    folds are drawn inside each outer training part)."""
    scored: list[Scored] = []
    for held in _folds(len(records), folds, seed):
        held_set = set(int(i) for i in held)
        train = [r for i, r in enumerate(records) if i not in held_set]
        scored += run(train, [records[int(i)] for i in held], vocab, seed=seed, options=options)
    return scored
