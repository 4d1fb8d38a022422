"""Candidate generation and ranking as pure functions over arrays: the worker's service
(``services.tag_candidates_generate``) and the evaluation (``evaluation.py``) run the same code.

Sources (each proposes tags with a score; the ranker sees every source's score for every candidate):
text (names and aliases found in title / description / OCR / ASR), embedding (cosine between the
video text and the tag name, e5), similar (tags of the nearest tagged videos, weighted by cosine,
plus reproduction-cluster members; in the app also those of the 20 nearest, round 10's wide neighbourhood), classifier (per-tag logistic regressions on the video
embedding, for tags with enough examples), vlm (free-text tags snapped to the vocabulary) and
related (tags that co-occurred with a text-hit tag on tagged videos, and the text hits' nearest tags
by tag embedding: generic tags such as 美食 that no text names but 龙虾 implies).

Zero-shot reads two vectors of the video: its whole text (stored, also the similar-videos key) and
its title alone (titles carry the uploader's hashtags; not stored, one short encoder call). A third
view, each ``#`` phrase embedded on its own (``hashtag_vectors``), is read only where the options read it
(``Options.reads_hashtags``): an evaluation arm, off in the app (``APP_OPTIONS``; round 7 in
bench/RESULTS.md, "Content tags").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from moderation.tagging.text import Segment, find_tag_names, name_prefixes

SOURCES = ("text", "embedding", "similar", "classifier", "vlm", "related")

FEATURES = [
    "text_title",
    "text_description",
    "text_ocr",
    "text_asr",
    "text_any",
    "embedding",
    "embedding_rank",
    "similar",
    "classifier",
    "vlm",
    "prior",
    "agreement",
    "name_len",
    "text_hashtag",
    "title_embedding",
    "title_embedding_rank",
    "related_cooccur",
    "related_similar",
    "segment_embedding",
    "segment_embedding_rank",
    "text_covered",
    "name_single",
    "embedding_z",
    "title_embedding_z",
    "embedding_centred",
    "accept_rate",
    # The hashtag view (round 7, an evaluation arm): computed only when ``generate`` gets phrase vectors.
    "hashtag_embedding_z",
    "hashtag_embedding_rank",
    # Round 8 (evaluation arms, not adopted: bench/RESULTS.md, "Content tags"): the record's own evidence gating the
    # learned sources, and the prior spread over tag space. Present only where the options' ranker reads them
    # (``Options.reads_evidence`` / ``reads_smooth_prior``).
    "prior_weak",
    "similar_weak",
    "embedding_z_weak",
    "prior_smooth",
    # Round 10 (an evaluation arm): the votes of a wider neighbourhood of tagged videos (``Options.similar_wide``),
    # present only where the options ask for it (``wide_similar``).
    "similar_wide",
]
# What the ranker read before round 10: round 2's arm ``feat_rate``, chosen by nested CV (bench/RESULTS.md, "Content
# tags"); the default of ``Options`` (every bench arm before round 10 reads it or names its own). The arms not adopted
# (other feature sets, objectives, fusion, duplicate suppression, extra candidate views) live in bench/ or, once their
# round closed, only in git history. ``segment_embedding`` and ``segment_embedding_rank`` are read but always 0: the
# per-segment view (round 1's V4) was not adopted.
FEAT_RATE_FEATURES = tuple(FEATURES[: FEATURES.index("accept_rate") + 1])
# What the app's ranker reads (``services.tag_ranker_train``; a stored ranker over other names is not served):
# ``feat_rate``'s features and round 10's ``similar_wide`` (adopted by its registered rule: bench/RESULTS.md, round 10).
APP_FEATURES = (*FEAT_RATE_FEATURES, "similar_wide")
RATE_STRENGTH = 2.0  # pseudo-counts of the overall acceptance rate in each tag's rate
# Until reviewers' events train a model: a hand-set weighted sum (scores in [0, 1] roughly).
DEFAULT_WEIGHTS = {
    "text_title": 0.35,
    "text_description": 0.2,
    "text_ocr": 0.15,
    "text_asr": 0.1,
    "text_any": 0.2,
    "embedding": 0.6,
    "embedding_rank": 0.2,
    "similar": 0.6,
    "classifier": 0.5,
    "vlm": 0.4,
    "prior": 0.3,
    "agreement": 0.1,
    "name_len": 0.0,
    "text_hashtag": 0.2,
    "title_embedding": 0.3,
    "title_embedding_rank": 0.1,
    "related_cooccur": 0.3,
    "related_similar": 0.1,
    "segment_embedding": 0.2,
    "segment_embedding_rank": 0.1,
    # New features weigh nothing in the weighted sum (it stays as it was): the learned ranker uses them.
    "text_covered": 0.0,
    "name_single": 0.0,
    "embedding_z": 0.0,
    "title_embedding_z": 0.0,
    "embedding_centred": 0.0,
    "accept_rate": 0.0,
    "hashtag_embedding_z": 0.0,
    "hashtag_embedding_rank": 0.0,
    "prior_weak": 0.0,
    "similar_weak": 0.0,
    "embedding_z_weak": 0.0,
    "prior_smooth": 0.0,
    "similar_wide": 0.0,
}
EMBEDDING_TOP = 50
TITLE_EMBEDDING_TOP = 20
RELATED_SIMILAR_K = 5  # nearest tags (by tag embedding) of each text hit proposed as related
RELATED_COOCCUR_K = 5  # most frequent co-tags of each text hit proposed as related
RELATED_SEEDS = 10  # at most this many text hits seed the related source
HASHTAG_RANK_TOP = 20  # ``hashtag_embedding_rank`` is 1 - rank / this for the phrase view's best tags, else 0
# Round 8's record evidence: a video whose text names this many distinct tags (two or more characters, at least one
# occurrence not inside a longer tag's) counts as fully evidenced; one naming none, as not at all (``_weakness``).
EVIDENCE_NAMED = 3
# Round 8's smoothed prior: a used tag lends its count to tags within this tag-embedding cosine (e5-small's
# near-synonyms sit at .94-.97, unrelated words at .83-.91: bench/RESULTS.md, the VLM snapping probes).
PRIOR_SMOOTH_COSINE = 0.9
_EVIDENCE_FEATURES = ("prior_weak", "similar_weak", "embedding_z_weak")
# Every candidate carries these; round 8's only where ``context_features`` computed them, so the worker's stored
# candidate and suggestion features (and the rows ``bench/tagging.py`` times) are what they were before round 8.
_GENERATED_FEATURES = tuple(f for f in FEATURES if f not in (*_EVIDENCE_FEATURES, "prior_smooth", "similar_wide"))


OBJECTIVES = ("logistic", "lambda")


@dataclass(frozen=True)
class Options:
    """Which parts of candidate generation run and what the ranker reads (the app runs the defaults;
    the benches' variants and arms switch parts off or read fewer features)."""

    embedding_top: int = EMBEDDING_TOP
    title: bool = True
    related: bool = True
    hashtag: bool = True
    ranker_features: tuple[str, ...] = FEAT_RATE_FEATURES
    ranker_c: float = 1.0
    # The hashtag view's best tags that join the embedding source (0: the view only gives features).
    hashtag_top: int = 0
    # How the ranker is fitted: "logistic" (``fit_linear``, the app's) or "lambda" (``fit_lambdarank``: round 9's
    # arm, the logistic direction refined on each record's pairs weighted by what swapping them does to recall@5).
    objective: str = "logistic"
    # Round 10's wider neighbourhood: the ``similar_wide`` nearest tagged videos vote (``wide_votes``: a kernel that
    # fades to 0 at the next one's similarity) into the feature ``similar_wide`` of every candidate (0: off); with
    # ``wide_pool`` their tags also join the pool (source ``similar``), beyond the ``SIMILAR_K`` nearest that do today.
    similar_wide: int = 0
    wide_pool: bool = False

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown ranker objective {self.objective!r}: one of {', '.join(OBJECTIVES)}")
        if self.similar_wide < 0 or (self.wide_pool and not self.similar_wide):
            raise ValueError("wide_pool needs a wide neighbourhood (similar_wide > 0), and similar_wide is a count")

    @property
    def wide_neighbours(self) -> int:
        """How many nearest tagged videos the wide neighbourhood needs (its ``similar_wide`` and the next one, whose
        similarity is the kernel's edge); 0 when off."""
        return self.similar_wide + 1 if self.similar_wide else 0

    @property
    def reads_hashtags(self) -> bool:
        """Whether anything here reads the hashtag view (else the worker need not embed the phrases)."""
        return self.hashtag_top > 0 or any(f.startswith("hashtag_embedding") for f in self.ranker_features)

    @property
    def reads_evidence(self) -> bool:
        """Whether the ranker reads round 8's evidence-gated features (else ``generate`` leaves them 0)."""
        return any(f in _EVIDENCE_FEATURES for f in self.ranker_features)

    @property
    def reads_smooth_prior(self) -> bool:
        """Whether the ranker reads round 8's smoothed prior (else ``generate`` leaves it 0)."""
        return "prior_smooth" in self.ranker_features


# Round 10's wide neighbourhood (adopted): the 20 nearest tagged videos vote into ``similar_wide``, and their tags join
# the pool (its rule took the pool because ``wide_pool`` won more outer folds' choices than ``wide``).
WIDE_K = 20

# What the worker and ``evaluate_tags`` run: round 10's arm ``wide_pool``. The hashtag view (``hashtag_top``, the
# ``hashtag_embedding_*`` features) is off: round 7 did not pass its adoption rule; nor did round 9's
# ``objective="lambda"`` (the app's ranker stays the logistic fit; bench/RESULTS.md, "Content tags").
APP_OPTIONS = Options(ranker_features=APP_FEATURES, similar_wide=WIDE_K, wide_pool=True)

SIMILAR_K = 10
MIN_CLASSIFIER_POSITIVES = 5


@dataclass
class Vocabulary:
    """The active vocabulary in memory: ids, names, the lexicon of names and aliases, embeddings."""

    tag_ids: list[int]
    names: list[str]
    lexicon: dict[str, int]
    embeddings: np.ndarray  # (n_tags, dim), rows L2-normalised, aligned with tag_ids
    max_len: int
    prior: dict[int, float] = field(default_factory=dict)  # tag id -> accepted count
    # tag id -> {co-tag id: P(co-tag | tag)}, from tagged videos (``cooccurrence``)
    cooccur: dict[int, dict[int, float]] = field(default_factory=dict)
    # The mean text vector of tagged videos: a tag's cosine to it is its "hubness" (a few tags sit
    # near every long noisy text); ``embedding_centred`` is the video's cosine minus that.
    centre: np.ndarray | None = None
    # tag id -> how often it was accepted when proposed (``acceptance_rates``); others get ``base_rate``
    rates: dict[int, float] = field(default_factory=dict)
    base_rate: float = 0.0

    @cached_property
    def index(self) -> dict[int, int]:
        return {t: i for i, t in enumerate(self.tag_ids)}

    @cached_property
    def prefixes(self) -> frozenset[str]:
        return name_prefixes(self.lexicon)


@dataclass
class Neighbour:
    similarity: float
    tag_ids: Sequence[int]
    video_id: int | None = None


@dataclass
class LinearModel:
    """A logistic-regression-shaped scorer: sigmoid(((x - mean) / scale) · coef + intercept)."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray

    def score(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class Candidate:
    tag_id: int
    features: dict[str, float]
    sources: list[str]
    evidence: list[dict[str, Any]]
    scores: dict[str, float]  # per source, for the TagCandidate rows
    score: float = 0.0


def generate(
    *,
    segments: list[Segment],
    vector: np.ndarray | None,
    vocab: Vocabulary,
    neighbours: Sequence[Neighbour] = (),
    classifiers: Mapping[int, LinearModel] | None = None,
    vlm: Mapping[int, float] | None = None,
    prior_top: int = 10,
    title_vector: np.ndarray | None = None,
    hashtag_vectors: np.ndarray | None = None,
    wide_neighbours: Sequence[Neighbour] = (),
    options: Options = Options(),
) -> dict[int, Candidate]:
    """Every source's candidates for one video, merged per tag, with the ranker's features.

    ``hashtag_vectors`` (one row per ``text.hashtag_phrases`` phrase) give the hashtag view: per tag the
    best cosine over the phrases; its features ``hashtag_embedding_z`` / ``_rank`` for every candidate,
    and (``options.hashtag_top``) its best tags as embedding candidates.

    ``wide_neighbours`` (the ``options.wide_neighbours`` nearest tagged videos, most similar first) give round 10's
    wider neighbourhood, read only where ``options.similar_wide`` asks for it."""
    cands: dict[int, Candidate] = {}

    def cand(tag_id: int) -> Candidate:
        c = cands.get(tag_id)
        if c is None:
            c = cands[tag_id] = Candidate(tag_id, dict.fromkeys(_GENERATED_FEATURES, 0.0), [], [], {})
        return c

    for tag_id, hit in find_tag_names(segments, vocab.lexicon, vocab.max_len, vocab.prefixes).items():
        c = cand(tag_id)
        for fld, n in hit.fields.items():
            c.features[f"text_{fld}"] = min(1.0, math.log1p(n) / math.log(4))
        c.features["text_any"] = 1.0
        c.features["text_covered"] = 1.0 if hit.uncovered == 0 else 0.0
        c.scores["text"] = float(min(1.0, sum(hit.fields.values()) / 3))
        if options.hashtag:
            c.features["text_hashtag"] = min(1.0, float(hit.hashtags))
        c.evidence = hit.evidence
        c.sources.append("text")
    text_hits = [t for t in cands]

    cosines = None
    if vector is not None and len(vocab.tag_ids):
        cosines = vocab.embeddings @ vector
        top = np.argsort(-cosines)[: options.embedding_top]
        for rank, i in enumerate(top):
            c = cand(vocab.tag_ids[int(i)])
            c.scores["embedding"] = float(cosines[i])
            c.features["embedding_rank"] = 1.0 - rank / options.embedding_top
            c.sources.append("embedding")

    title_cosines = None
    if options.title and title_vector is not None and len(vocab.tag_ids):
        # The title's own zero-shot view: its top tags join the embedding source, the best cosine of
        # either view kept as their score, and their rank in this view as ``title_embedding_rank``.
        title_cosines = vocab.embeddings @ title_vector
        for rank, i in enumerate(np.argsort(-title_cosines)[:TITLE_EMBEDDING_TOP]):
            c = cand(vocab.tag_ids[int(i)])
            c.scores["embedding"] = max(c.scores.get("embedding", -1.0), float(title_cosines[i]))
            c.features["title_embedding_rank"] = max(
                c.features["title_embedding_rank"], 1.0 - rank / TITLE_EMBEDDING_TOP
            )
            if "embedding" not in c.sources:
                c.sources.append("embedding")

    hash_cosines = hash_z = None
    hash_rank: dict[int, int] = {}
    if hashtag_vectors is not None and len(hashtag_vectors) and len(vocab.tag_ids):
        # Each phrase alone (a short, focused query), not blended with the rest of the title; z-scored per
        # phrase over the vocabulary (like ``embedding_z``) before the maximum, so one phrase's level does not rule.
        per = vocab.embeddings @ np.asarray(hashtag_vectors, dtype=vocab.embeddings.dtype).T
        hash_cosines = per.max(axis=1)
        sd = per.std(axis=0)
        hash_z = ((per - per.mean(axis=0)) / np.where(sd > 1e-9, sd, 1.0)).max(axis=1)
        order = np.argsort(-hash_cosines, kind="stable")[: max(HASHTAG_RANK_TOP, options.hashtag_top)]
        hash_rank = {int(i): position for position, i in enumerate(order)}
        for i in order[: options.hashtag_top]:
            c = cand(vocab.tag_ids[int(i)])
            c.scores["embedding"] = max(c.scores.get("embedding", -1.0), float(hash_cosines[i]))
            if "embedding" not in c.sources:
                c.sources.append("embedding")

    seed_rows: list[int] = []
    if options.related and text_hits:
        _related(cand, text_hits[:RELATED_SEEDS], vocab)
        index = vocab.index
        seed_rows = [index[t] for t in text_hits[:RELATED_SEEDS] if t in index]

    if neighbours:
        weights = [max(nb.similarity, 0.0) for nb in neighbours]
        total = sum(weights) or 1.0
        votes: dict[int, float] = {}
        for nb, w in zip(neighbours, weights, strict=True):
            for tag_id in nb.tag_ids:
                votes[tag_id] = votes.get(tag_id, 0.0) + w
        for tag_id, v in votes.items():
            if tag_id in vocab.lexicon.values() or tag_id in vocab.index:
                c = cand(tag_id)
                c.features["similar"] = v / total
                c.scores["similar"] = v / total
                c.sources.append("similar")

    if classifiers and vector is not None:
        for tag_id, model in classifiers.items():
            p = float(model.score(vector[None, :])[0])
            if p >= 0.5:
                c = cand(tag_id)
                c.scores["classifier"] = p
                c.sources.append("classifier")

    wide: dict[int, float] = {}
    if options.similar_wide and wide_neighbours:
        wide = wide_votes(wide_neighbours, options.similar_wide)
        if options.wide_pool:
            for tag_id, v in wide.items():
                if tag_id in vocab.index:
                    c = cand(tag_id)
                    c.scores["similar"] = max(c.scores.get("similar", 0.0), v)
                    if "similar" not in c.sources:
                        c.sources.append("similar")

    for tag_id, score in (vlm or {}).items():
        c = cand(tag_id)
        c.features["vlm"] = score
        c.scores["vlm"] = score
        c.sources.append("vlm")

    # The most used tags are candidates too (the prior alone may rank them; sources stay empty).
    if prior_top and vocab.prior:
        for tag_id, _ in sorted(vocab.prior.items(), key=lambda kv: -kv[1])[:prior_top]:
            cand(tag_id)

    index = vocab.index
    max_prior = max(vocab.prior.values(), default=0.0)
    # Each candidate's highest cosine to a text-hit tag other than itself (its tag-space closeness
    # to what the text names): one (seeds x candidates) product over the stored tag embeddings.
    seed_sims: dict[int, float] = {}
    if seed_rows:
        rows = [index[t] for t in cands if t in index]
        sims = vocab.embeddings[rows] @ vocab.embeddings[seed_rows].T
        for r, row in zip(rows, sims, strict=True):
            others = [float(v) for v, sr in zip(row, seed_rows, strict=True) if sr != r]
            seed_sims[vocab.tag_ids[r]] = max(others, default=0.0)
    z = _zscores(cosines)
    title_z = _zscores(title_cosines)
    hub = vocab.embeddings @ vocab.centre if vocab.centre is not None and len(vocab.tag_ids) else None

    def fill(tag_id: int, c: Candidate) -> None:
        """Every candidate's features from the views above."""
        i = index.get(tag_id)
        if cosines is not None and i is not None:
            c.features["embedding"] = float(cosines[i])
            c.features["embedding_z"] = float(z[i]) / 4  # type: ignore[index]
            c.features["embedding_centred"] = float(cosines[i] - (hub[i] if hub is not None else 0.0))
        if title_cosines is not None and i is not None:
            c.features["title_embedding"] = float(title_cosines[i])
            c.features["title_embedding_z"] = float(title_z[i]) / 4  # type: ignore[index]
        if hash_z is not None and i is not None:
            c.features["hashtag_embedding_z"] = float(hash_z[i]) / 4
            place = hash_rank.get(i, HASHTAG_RANK_TOP)
            c.features["hashtag_embedding_rank"] = max(0.0, 1.0 - place / HASHTAG_RANK_TOP)
        if tag_id in seed_sims:
            c.features["related_similar"] = max(0.0, seed_sims[tag_id])
        if classifiers and vector is not None and tag_id in classifiers:
            c.features["classifier"] = float(classifiers[tag_id].score(vector[None, :])[0])
        count = vocab.prior.get(tag_id, 0.0)
        c.features["prior"] = math.log1p(count) / math.log1p(max_prior) if max_prior else 0.0
        c.features["agreement"] = len(set(c.sources)) / len(SOURCES)
        c.features["name_len"] = min(len(vocab.names[i]), 6) / 6 if i is not None else 0.0
        c.features["name_single"] = 1.0 if i is not None and len(vocab.names[i]) == 1 else 0.0
        c.features["accept_rate"] = vocab.rates.get(tag_id, vocab.base_rate)

    for tag_id, c in cands.items():
        fill(tag_id, c)
    context_features(cands, vocab, options)
    if options.similar_wide and wide_neighbours:
        wide_similar(cands, wide)
    return cands


def wide_votes(neighbours: Sequence[Neighbour], k: int) -> dict[int, float]:
    """Round 10's wider neighbourhood: each tag's share of the ``k`` nearest tagged videos' votes, video j weighing
    its similarity minus the (k+1)-th's (a kernel whose bandwidth adapts to the neighbourhood and fades to 0 at its
    edge, so the 11th-20th neighbours count, less than the nearest). ``neighbours`` are most similar first; with no
    (k+1)-th the farthest given is the edge, and where every weight is 0 the videos weigh the same."""
    near = list(neighbours[:k])
    if not near:
        return {}
    edge = neighbours[k].similarity if len(neighbours) > k else min(nb.similarity for nb in near)
    weights = [max(nb.similarity - edge, 0.0) for nb in near]
    if sum(weights) <= 0.0:
        weights = [1.0] * len(near)
    total = sum(weights)
    votes: dict[int, float] = {}
    for nb, w in zip(near, weights, strict=True):
        if w <= 0.0:
            continue  # at the edge: no vote (and, with ``wide_pool``, no candidate)
        for tag_id in set(nb.tag_ids):
            votes[tag_id] = votes.get(tag_id, 0.0) + w / total
    return votes


def wide_similar(cands: Mapping[int, Candidate], votes: Mapping[int, float]) -> None:
    """Every candidate's ``similar_wide`` (its ``wide_votes`` share, 0 without one). Reads nothing else, so the
    evaluation's cached candidates (shared by arms with the same pool) get it afterwards."""
    for tag_id, c in cands.items():
        c.features["similar_wide"] = float(votes.get(tag_id, 0.0))


def context_features(cands: Mapping[int, Candidate], vocab: Vocabulary, options: Options) -> None:
    """Round 8's features, where the options' ranker reads them (an evaluation arm; 0 otherwise): the record's
    evidence gating the learned sources (``_weakness``) and the prior spread over tag space (``_smooth_prior``).
    They read only the candidates' other features and the vocabulary's prior, so the evaluation's cached
    candidates (shared by arms with the same pool) get them afterwards. Features not read are not added at all."""
    if options.reads_evidence:
        weak = _weakness(cands, vocab)
        for c in cands.values():
            c.features["prior_weak"] = c.features["prior"] * weak
            c.features["similar_weak"] = c.features["similar"] * weak
            c.features["embedding_z_weak"] = c.features["embedding_z"] * weak
    if options.reads_smooth_prior:
        _smooth_prior(cands, vocab)


def _weakness(cands: Mapping[int, Candidate], vocab: Vocabulary) -> float:
    """How little the video's own text says, in [0, 1]: 1 - (distinct tags of two or more characters its text names,
    not only inside a longer tag's name) / ``EVIDENCE_NAMED``, floored at 0. Round 8's gate: a linear ranker weighs
    the prior and the neighbours' votes the same on a garbled caption as on a title that names the topic; the product
    lets it lean on them only where the text is silent."""
    index = vocab.index
    named = sum(
        1
        for t, c in cands.items()
        if "text" in c.sources and c.features["text_covered"] == 0.0 and t in index and len(vocab.names[index[t]]) > 1
    )
    return max(0.0, 1.0 - named / EVIDENCE_NAMED)


def _smooth_prior(cands: Mapping[int, Candidate], vocab: Vocabulary) -> None:
    """Round 8's ``prior_smooth``: each candidate's accepted count plus what used tags within ``PRIOR_SMOOTH_COSINE``
    (tag embedding) lend it, each its count times (cosine - threshold) / (1 - threshold), log-scaled like ``prior``.
    A tag nobody has accepted yet but whose near-synonym is common (母亲 beside 妈妈) is then not read as unknown."""
    index = vocab.index
    used = [(index[t], n) for t, n in vocab.prior.items() if t in index and n > 0]
    rows = [index[t] for t in cands if t in index]
    if not used or not rows:
        return
    used_rows = np.array([i for i, _ in used])
    counts = np.array([n for _, n in used], dtype=np.float64)
    sims = vocab.embeddings[rows] @ vocab.embeddings[used_rows].T
    lend = np.clip((sims - PRIOR_SMOOTH_COSINE) / (1.0 - PRIOR_SMOOTH_COSINE), 0.0, 1.0)
    lend[np.asarray(rows)[:, None] == used_rows[None, :]] = 0.0  # a tag's own count enters once, below
    max_prior = float(counts.max())
    for r, row in zip(rows, lend, strict=True):
        tag_id = vocab.tag_ids[r]
        total = vocab.prior.get(tag_id, 0.0) + float(row @ counts)
        cands[tag_id].features["prior_smooth"] = math.log1p(total) / math.log1p(max_prior)


def acceptance_rates(
    outcomes: Iterable[tuple[int, bool]], *, strength: float = RATE_STRENGTH
) -> tuple[dict[int, float], float]:
    """Per tag, the share of its proposals that were accepted, shrunk towards the overall share by
    ``strength`` pseudo-counts: 生活记录 proposed for many videos and kept on few scores low. The app
    reads reviewers' accept / reject events; the evaluation, out-of-fold candidates and gold tags."""
    shown: dict[int, int] = {}
    kept: dict[int, int] = {}
    for tag_id, accepted in outcomes:
        shown[tag_id] = shown.get(tag_id, 0) + 1
        kept[tag_id] = kept.get(tag_id, 0) + int(accepted)
    total = sum(shown.values())
    base = sum(kept.values()) / total if total else 0.0
    return {t: (kept[t] + strength * base) / (n + strength) for t, n in shown.items()}, base


def _zscores(cos: np.ndarray | None) -> np.ndarray | None:
    """A video's cosines standardised over the whole vocabulary (e5's cosines are compressed, and
    their level differs from one text to the next)."""
    if cos is None or not len(cos):
        return None
    sd = float(cos.std())
    return (cos - float(cos.mean())) / (sd if sd > 1e-9 else 1.0)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread for the small products here: on a busy machine OpenBLAS's spinning worker
    threads made one (3,386 x 384) x 384 product ~60 ms instead of ~1 ms."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _related(cand: Any, seeds: Sequence[int], vocab: Vocabulary) -> None:
    """The related source: for each text-hit tag, its most frequent co-tags on tagged videos
    (score = P(co-tag | tag)) and its nearest tags by embedding (score = their cosine)."""
    index = vocab.index
    for seed in seeds:
        name = vocab.names[index[seed]] if seed in index else str(seed)
        co = sorted(vocab.cooccur.get(seed, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:RELATED_COOCCUR_K]
        for tag_id, p in co:
            if tag_id == seed or tag_id not in index:
                continue
            c = cand(tag_id)
            c.features["related_cooccur"] = max(c.features["related_cooccur"], p)
            c.scores["related"] = max(c.scores.get("related", 0.0), p)
            if "related" not in c.sources:
                c.sources.append("related")
            _related_evidence(c, {"field": "related", "from": name, "how": "co-occurs", "score": round(p, 3)})
        i = index.get(seed)
        if i is None:
            continue
        sims = vocab.embeddings @ vocab.embeddings[i]
        sims[i] = -np.inf
        near = min(RELATED_SIMILAR_K, len(sims) - 1)  # a vocabulary smaller than that: all the others
        for j in np.argpartition(-sims, near - 1)[:near] if near > 0 else []:
            c = cand(vocab.tag_ids[int(j)])
            c.scores["related"] = max(c.scores.get("related", 0.0), float(sims[j]))
            if "related" not in c.sources:
                c.sources.append("related")
            evidence = {"field": "related", "from": name, "how": "similar tag", "score": round(float(sims[j]), 3)}
            _related_evidence(c, evidence)


def _related_evidence(c: Candidate, evidence: dict[str, Any]) -> None:
    if sum(1 for e in c.evidence if e.get("field") == "related") < 3:
        c.evidence = [*c.evidence, evidence]


def evidence_of(c: Candidate, source: str) -> list[dict[str, Any]]:
    """A candidate's evidence that belongs to one source's row (text: the segments; related: the seeds)."""
    if source == "related":
        return [e for e in c.evidence if e.get("field") == "related"]
    if source == "text":
        return [e for e in c.evidence if e.get("field") != "related"]
    return []


def cooccurrence(tag_lists: Sequence[Sequence[int]]) -> dict[int, dict[int, float]]:
    """P(b | a) over tagged videos, shrunk towards 0 for rare tags: n(a, b) / (n(a) + 1)."""
    n: dict[int, int] = {}
    pair: dict[int, dict[int, int]] = {}
    for tags in tag_lists:
        unique = set(tags)
        for a in unique:
            n[a] = n.get(a, 0) + 1
            row = pair.setdefault(a, {})
            for b in unique:
                if b != a:
                    row[b] = row.get(b, 0) + 1
    return {a: {b: k / (n[a] + 1) for b, k in row.items()} for a, row in pair.items() if row}


def feature_matrix(cands: Sequence[Candidate]) -> np.ndarray:
    # ``.get``: round 8's context features are only present where an arm's ranker read them (``context_features``).
    return np.array([[c.features.get(k, 0.0) for k in FEATURES] for c in cands], dtype=np.float64).reshape(
        -1, len(FEATURES)
    )


def weighted_sum(
    x: np.ndarray, weights: Mapping[str, float] | None = None, names: Sequence[str] | None = None
) -> np.ndarray:
    """The weights' average of the features (each in [0, 1]), so the score is in [0, 1] too; the
    columns of ``x`` are ``names`` (every feature by default)."""
    w = np.array([(weights or DEFAULT_WEIGHTS).get(k, 0.0) for k in (names or FEATURES)])
    return (x @ w) / w.sum()


def rank(
    cands: dict[int, Candidate], model: LinearModel | None, *, features: Sequence[str] | None = None
) -> list[Candidate]:
    """Score every candidate (the learned model over ``features``, else the weighted sum) and sort,
    best first."""
    items = list(cands.values())
    if not items:
        return []
    x = feature_matrix(items)
    if model is not None:
        cols = [FEATURES.index(k) for k in (features or APP_FEATURES)]
        scores = model.score(x[:, cols])
    else:
        scores = weighted_sum(x)
    for c, s in zip(items, scores, strict=True):
        c.score = float(s)
    return sorted(items, key=lambda c: (-c.score, c.tag_id))


def fit_linear(x: np.ndarray, y: np.ndarray, *, c: float = 1.0, seed: int = 0) -> LinearModel:
    """Logistic regression on standardised features (class-balanced)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    clf.fit((x - mean) / scale, y)
    return LinearModel(coef=clf.coef_[0].copy(), intercept=float(clf.intercept_[0]), mean=mean, scale=scale)


# Round 9's metric-weighted pairwise objective (``fit_lambdarank``; an evaluation arm). Fixed before its run.
LAMBDA_K = 5  # the cut-off whose recall the pair weights follow
# Every (gold, other) pair of a record weighs at least this, so gold tags far below the cut still learn.
LAMBDA_FLOOR = 0.1
LAMBDA_L2 = 0.01  # L2 penalty on the standardised coefficients
LAMBDA_EPOCHS = 300
LAMBDA_STEP = 0.01  # Adam's step size


def fit_lambdarank(
    xs: Sequence[np.ndarray],
    ys: Sequence[np.ndarray],
    *,
    c: float = 1.0,
    seed: int = 0,
    k: int = LAMBDA_K,
    floor: float = LAMBDA_FLOOR,
    l2: float = LAMBDA_L2,
    epochs: int = LAMBDA_EPOCHS,
) -> LinearModel:
    """A linear ranker fitted to each record's order, not to each row: ``xs`` / ``ys`` are one record's candidate
    features and gold labels each. Warm-started from ``fit_linear`` on all rows (class-balanced logistic), then
    LambdaRank on the records' (gold, other candidate) pairs: each pair's logistic loss on the score difference is
    weighted by how much swapping the two would change the record's recall@``k`` under the current scores (1 / the
    record's gold count when one of them is in the top ``k`` and the other is not, else 0) plus ``floor`` / gold
    count — so the gradient is spent on the top-5 boundary, which pointwise and uniform pairwise losses (rounds 3-4)
    spread over every row. The scores are then Platt-scaled (a class-balanced one-feature logistic regression on the
    training rows), so they stay on the logistic ranker's scale and a tag set's preselect threshold keeps its sense."""
    from sklearn.linear_model import LogisticRegression

    groups = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=int)) for x, y in zip(xs, ys, strict=True)]
    x_all = np.vstack([x for x, _ in groups])
    y_all = np.concatenate([y for _, y in groups])
    warm = fit_linear(x_all, y_all, c=c, seed=seed)
    mean, scale = warm.mean, warm.scale
    pairs = []
    for x, y in groups:
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        if len(pos) and len(neg):
            xz = (x - mean) / scale
            pairs.append((xz, pos, neg, 1.0 / len(pos)))
    norm = float(np.linalg.norm(warm.coef))
    w = warm.coef / norm if norm > 0 else warm.coef.copy()
    if not pairs:
        return warm
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    beta1, beta2 = 0.9, 0.999
    for epoch in range(1, epochs + 1):
        grad = l2 * w
        for xz, pos, neg, weight in pairs:
            s = xz @ w
            place = np.empty(len(s), dtype=np.int64)
            place[np.argsort(-s, kind="stable")] = np.arange(len(s))
            top = (place < k).astype(np.float64)
            swap = (np.abs(top[pos][:, None] - top[neg][None, :]) + floor) * weight
            diff = s[pos][:, None] - s[neg][None, :]
            rho = swap / (1.0 + np.exp(np.clip(diff, -30, 30)))  # d(-log sigmoid(diff)) / d(diff), weighted
            grad -= (rho.sum(axis=1) @ xz[pos] - rho.sum(axis=0) @ xz[neg]) / len(pairs)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        w = w - LAMBDA_STEP * (m / (1 - beta1**epoch)) / (np.sqrt(v / (1 - beta2**epoch)) + 1e-8)
    s_all = ((x_all - mean) / scale) @ w
    platt = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed)
    platt.fit(s_all[:, None], y_all)
    a = float(platt.coef_[0][0])
    return LinearModel(coef=w * a, intercept=float(platt.intercept_[0]), mean=mean, scale=scale)


def fit_classifiers(
    vectors: np.ndarray, tag_lists: Sequence[Sequence[int]], *, min_positives: int = MIN_CLASSIFIER_POSITIVES
) -> dict[int, LinearModel]:
    """One logistic regression per tag with at least ``min_positives`` examples (others are negatives)."""
    from sklearn.linear_model import LogisticRegression

    counts: dict[int, int] = {}
    for tags in tag_lists:
        for t in set(tags):
            counts[t] = counts.get(t, 0) + 1
    models: dict[int, LinearModel] = {}
    dim = vectors.shape[1] if len(vectors) else 0
    for tag_id, n in counts.items():
        if n < min_positives or n == len(tag_lists):
            continue
        y = np.array([tag_id in tags for tags in tag_lists], dtype=int)
        clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
        clf.fit(vectors, y)
        models[tag_id] = LinearModel(
            coef=clf.coef_[0].copy(), intercept=float(clf.intercept_[0]), mean=np.zeros(dim), scale=np.ones(dim)
        )
    return models


def neighbours_from(
    vector: np.ndarray, vectors: np.ndarray, tag_lists: Sequence[Sequence[int]], *, k: int = SIMILAR_K
) -> list[Neighbour]:
    """The ``k`` most similar tagged items (in memory; the service asks pgvector instead)."""
    if not len(vectors):
        return []
    sims = vectors @ vector
    top = np.argsort(-sims)[:k]
    return [Neighbour(float(sims[i]), tag_lists[int(i)]) for i in top if tag_lists[int(i)]]


# --- metrics ---------------------------------------------------------------------------------------


def precision_recall_at(ranked: Sequence[int], gold: set[int], k: int) -> tuple[float, float]:
    hits = len(set(ranked[:k]) & gold)
    return hits / k, (hits / len(gold) if gold else 0.0)


def gap_at(predictions: Sequence[tuple[Sequence[tuple[int, float]], set[int]]], k: int = 20) -> float:
    """YouTube-8M's global average precision: every video's top-``k`` (tag, score) pooled, sorted by
    score, AP over the pool with the total number of gold tags as the denominator."""
    pool: list[tuple[float, bool]] = []
    positives = 0
    for ranked, gold in predictions:
        positives += len(gold)
        pool += [(s, t in gold) for t, s in list(ranked)[:k]]
    if not positives:
        return 0.0
    pool.sort(key=lambda p: -p[0])
    hits = 0
    ap = 0.0
    for i, (_, ok) in enumerate(pool, start=1):
        if ok:
            hits += 1
            ap += hits / i
    return ap / positives
