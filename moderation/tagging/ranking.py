"""Candidate generation and ranking as pure functions over arrays: the worker's service
(``services.tag_candidates_generate``) and the evaluation (``evaluation.py``) run the same code.

Sources (each proposes tags with a score; the ranker sees every source's score for every candidate):
text (names and aliases found in title / description / OCR / ASR), embedding (cosine between the
video text and the tag name, e5), similar (tags of the nearest tagged videos, weighted by cosine,
plus reproduction-cluster members), classifier (per-tag logistic regressions on the video
embedding, for tags with enough examples), vlm (free-text tags snapped to the vocabulary) and
related (tags that co-occurred with a text-hit tag on tagged videos, and the text hits' nearest tags
by tag embedding: generic tags such as 美食 that no text names but 龙虾 implies).

Zero-shot reads two vectors of the video: its whole text (stored, also the similar-videos key) and
its title alone (titles carry the uploader's hashtags; not stored, one short encoder call).
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
    # Round 3 (tag-space structure, vocabulary only: no tagged videos needed)
    "embedding_smooth",
    "smooth_rank",
    "tag_density",
    "tag_children",
    "embedding_gap",
    # Round 3: the second encoder (multilingual USE v3), when the vocabulary carries its embeddings
    "use_z",
    "use_title_z",
    "ensemble_z",
    "ensemble_rank",
    # Round 4: co-occurrence with the confident head of the hand-weighted order (``COOCCUR_SEEDS``)
    "cooccur_top",
    # Round 5: the learned map from video vectors to tag vectors (``fit_adapter``)
    "adapter_z",
    "adapter_rank",
    "adapter_title_z",
    # Round 6 (recall sources): the chunk view (e5 over ``text.chunk_texts`` pieces, max-pooled) and the
    # head's tag-space neighbourhood (``Options.chunk_top`` / ``head_near``)
    "chunk_z",
    "chunk_rank",
    "head_near",
]
# The features the ranker read before the error analysis of issue 16's second round (the nested
# comparison's reference arm): the five after them are new.
FEATURES_V1 = FEATURES[: FEATURES.index("text_covered")]
# Round 2's first arm set (the five error-analysis features), before ``accept_rate``.
FEATURES_V2 = FEATURES[: FEATURES.index("accept_rate")]
# Round 2's app (``feat_rate``), before round 3's tag-space features.
FEATURES_V3 = FEATURES[: FEATURES.index("embedding_smooth")]
# Round 3's additions: the vocabulary's tag-space structure, and the second encoder's view.
STRUCTURE_FEATURES = ("embedding_smooth", "smooth_rank", "tag_density", "tag_children", "embedding_gap")
ENSEMBLE_FEATURES = ("use_z", "use_title_z", "ensemble_z", "ensemble_rank")
# What the app's ranker reads (``Options``' default, ``services.tag_ranker_train``): round 2's arm
# ``feat_rate``; round 3's features are evaluation arms (bench/tagging_nested.py) until nested CV
# supports them.
APP_FEATURES = FEATURES_V3
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
    "embedding_smooth": 0.0,
    "smooth_rank": 0.0,
    "tag_density": 0.0,
    "tag_children": 0.0,
    "embedding_gap": 0.0,
    "use_z": 0.0,
    "use_title_z": 0.0,
    "ensemble_z": 0.0,
    "ensemble_rank": 0.0,
    "cooccur_top": 0.0,
    "adapter_z": 0.0,
    "adapter_rank": 0.0,
    "adapter_title_z": 0.0,
    "chunk_z": 0.0,
    "chunk_rank": 0.0,
    "head_near": 0.0,
}
EMBEDDING_TOP = 50
TITLE_EMBEDDING_TOP = 20
SEGMENT_EMBEDDING_TOP = 20
RELATED_SIMILAR_K = 5  # nearest tags (by tag embedding) of each text hit proposed as related
RELATED_COOCCUR_K = 5  # most frequent co-tags of each text hit proposed as related
RELATED_SEEDS = 10  # at most this many text hits seed the related source
STRUCTURE_K = 10  # a tag's nearest tags (by tag embedding) whose video cosines smooth its own
SMOOTH_TOP = 30  # tags with the best smoothed cosine join the embedding source (``Options.smooth``)
ADAPTER_RANK_DEPTH = 50  # ``adapter_rank`` over this many of the adapter's best tags when it proposes none
COOCCUR_SEEDS = 5  # ``cooccur_top``: the best of the hand-weighted order whose co-tags are read
ADAPTER_RIDGE = 1.0  # ``fit_adapter``'s pull towards the identity map (fixed, not tuned on the reported folds)
ADAPTER_FEATURES = ("adapter_z", "adapter_rank", "adapter_title_z")
CHUNK_FEATURES = ("chunk_z", "chunk_rank")
HEAD_SEEDS = 5  # ``head_near``: the best of the hand-weighted order whose nearest tags are read
RRF_K = 60  # reciprocal-rank fusion's constant (the usual one; not tuned here)


@dataclass(frozen=True)
class Options:
    """Which parts of candidate generation run (the evaluation's pre-registered variants; the app
    runs the defaults)."""

    embedding_top: int = EMBEDDING_TOP
    title: bool = True
    segments: bool = False  # per-segment vectors (``text.segment_texts``): variant V4, off in the app
    related: bool = True
    hashtag: bool = True
    # The ranker (evaluation arms): which features it reads, its regularisation, and duplicate
    # suppression in the top of the list ("none"; "name": a tag whose name contains or is contained in
    # a higher-ranked one's; "name+cos": that or a tag-embedding cosine >= DEDUP_COSINE).
    ranker_features: tuple[str, ...] = tuple(APP_FEATURES)
    ranker_c: float = 1.0
    dedup: str = "none"
    # Round 3: the title view's own depth, and the smoothed cosine (each tag's video cosine averaged
    # over its nearest tags: a generic tag such as 美食 sits among the specific ones a text is near)
    # as a recall view of ``smooth_top`` tags; the ranker objective ("pointwise": class-balanced
    # logistic regression on candidates; "pairwise": logistic regression on the differences of a
    # record's gold and other candidates, then one Platt scaling so scores stay probabilities).
    title_top: int = 20
    smooth_top: int = 0
    objective: str = "pointwise"
    # Similar videos' votes: 0 weighs each neighbour by its cosine (e5's cosines are compressed, so
    # ten neighbours vote almost alike); T > 0 by exp((cosine - best) / T), the nearest counting most.
    similar_temperature: float = 0.0
    # The second encoder's view: the tags with the best mean z-score of the two encoders (whole text,
    # and the title's likewise) join the embedding source, this many of each. 0: the second encoder
    # is not read at all (its features stay 0).
    ensemble_top: int = 0
    # Round 4: "listwise" (a per-video softmax over its candidates, gold tags sharing the target) and
    # "listwise_prior" (the same, its L2 penalty pulling towards the hand-weighted sum's direction
    # instead of towards 0) join the objectives; ``fusion`` "rrf" orders by reciprocal-rank fusion of
    # the learned ranker's order and every source's own order (``rrf_order``).
    fusion: str = "none"
    # Round 5: the adapter view (``fit_adapter``; only when the vocabulary carries an adapter): its
    # ``adapter_top`` best tags join the embedding source. Its features are computed whenever an
    # adapter exists.
    adapter_top: int = 0
    # Round 6: the chunk view (each <= 128-character piece of the whole non-title text embedded on its
    # own, ``text.chunk_texts``; a tag's cosines z-scored per chunk over the vocabulary, then the
    # maximum over chunks): its ``chunk_top`` best tags join the embedding source, features
    # ``chunk_z`` / ``chunk_rank``. 0: not read. ``head_near``: each of the ``HEAD_SEEDS`` best
    # candidates of the hand-weighted order proposes its ``head_near`` nearest tags (tag embedding;
    # source "related"), feature ``head_near`` = a candidate's best cosine to one of them. 0: off.
    chunk_top: int = 0
    head_near: int = 0


BASELINE = Options(embedding_top=30, title=False, related=False, hashtag=False, ranker_features=tuple(FEATURES_V1))
V1 = Options(ranker_features=tuple(FEATURES_V1))
DEDUP_COSINE = 0.9
DEDUP_DEPTH = 20  # duplicate suppression reorders this many of the best candidates
SIMILAR_K = 10
MIN_CLASSIFIER_POSITIVES = 5


@dataclass
class TagStructure:
    """What the vocabulary's own shape says about each tag (no tagged videos needed): its nearest
    tags by tag embedding, how close they are (``density``: a generic tag sits in a crowd), and how
    many other names contain its name (``children``: 游戏 inside 射击游戏, 手机游戏 …), scaled to [0, 1]."""

    neighbours: np.ndarray  # (n_tags, STRUCTURE_K) row indices
    density: np.ndarray  # (n_tags,)
    children: np.ndarray  # (n_tags,)


def tag_structure(vocab: Vocabulary) -> TagStructure:
    """The vocabulary's ``TagStructure``, computed on first use and kept on the vocabulary."""
    if vocab.structure is not None and len(vocab.structure.density) == len(vocab.tag_ids):
        return vocab.structure
    n = len(vocab.tag_ids)
    k = max(0, min(STRUCTURE_K, n - 1))
    neighbours = np.zeros((n, k), dtype=np.int64)
    density = np.zeros(n, dtype=np.float32)
    emb = vocab.embeddings
    for lo in range(0, n, 1024):
        sims = emb[lo : lo + 1024] @ emb.T
        sims[np.arange(len(sims)), np.arange(lo, lo + len(sims))] = -np.inf
        if k:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            neighbours[lo : lo + len(sims)] = part
            density[lo : lo + len(sims)] = np.take_along_axis(sims, part, axis=1).mean(axis=1)
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
    vocab.structure = TagStructure(neighbours, density, children.astype(np.float32))
    return vocab.structure


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
    structure: TagStructure | None = None  # ``tag_structure``: computed once per vocabulary
    # The second encoder's tag embeddings (rows aligned with tag_ids), when it is installed.
    embeddings2: np.ndarray | None = None
    # ``fit_adapter``: (dim, dim), a video vector times it lands near its tags' vectors
    adapter: np.ndarray | None = None

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
    segment_vectors: np.ndarray | None = None,
    vector2: np.ndarray | None = None,
    title_vector2: np.ndarray | None = None,
    chunk_vectors: np.ndarray | None = None,
    options: Options = Options(),
) -> dict[int, Candidate]:
    """Every source's candidates for one video, merged per tag, with the ranker's features."""
    cands: dict[int, Candidate] = {}

    def cand(tag_id: int) -> Candidate:
        c = cands.get(tag_id)
        if c is None:
            c = cands[tag_id] = Candidate(tag_id, {k: 0.0 for k in FEATURES}, [], [], {})
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

    def more_embedding_hits(extra: np.ndarray, top_n: int, feature: str, score: np.ndarray | None = None) -> None:
        """A second zero-shot view (title, segments, smoothed): its top tags join the embedding source,
        the best cosine of any view kept as its score (``score``, else ``extra``), and their rank in
        this view as ``feature``."""
        for rank, i in enumerate(np.argsort(-extra)[:top_n]):
            c = cand(vocab.tag_ids[int(i)])
            value = float((score if score is not None else extra)[i])
            c.scores["embedding"] = max(c.scores.get("embedding", -1.0), value)
            c.features[feature] = max(c.features[feature], 1.0 - rank / top_n)
            if "embedding" not in c.sources:
                c.sources.append("embedding")

    title_cosines = None
    if options.title and title_vector is not None and len(vocab.tag_ids):
        title_cosines = vocab.embeddings @ title_vector
        more_embedding_hits(title_cosines, options.title_top, "title_embedding_rank")

    segment_cosines = None
    if options.segments and segment_vectors is not None and len(segment_vectors) and len(vocab.tag_ids):
        segment_cosines = (vocab.embeddings @ np.asarray(segment_vectors).T).max(axis=1)
        more_embedding_hits(segment_cosines, SEGMENT_EMBEDDING_TOP, "segment_embedding_rank")

    # The tag-space structure (~1 s per vocabulary, a smoothing per video) only when an arm reads it:
    # the app's ranker (APP_FEATURES) does not.
    wants_structure = bool(options.smooth_top) or any(f in options.ranker_features for f in STRUCTURE_FEATURES)
    structure = tag_structure(vocab) if wants_structure and cosines is not None and len(vocab.tag_ids) > 1 else None
    smooth = smooth_z = None
    if structure is not None and cosines is not None:
        smooth = cosines[structure.neighbours].mean(axis=1)
        smooth_z = _zscores(smooth)
        if options.smooth_top and smooth_z is not None:
            more_embedding_hits(smooth_z, options.smooth_top, "smooth_rank", score=cosines)

    use_z = use_title_z = ensemble = None
    if options.ensemble_top and vocab.embeddings2 is not None and vector2 is not None and cosines is not None:
        use_z = _zscores(vocab.embeddings2 @ vector2)
        ensemble = (_zscores(cosines) + use_z) / 2  # type: ignore[operator]
        more_embedding_hits(ensemble, options.ensemble_top, "ensemble_rank", score=cosines)
        if title_vector2 is not None and title_cosines is not None:
            use_title_z = _zscores(vocab.embeddings2 @ title_vector2)
            title_ensemble = (_zscores(title_cosines) + use_title_z) / 2  # type: ignore[operator]
            more_embedding_hits(title_ensemble, options.ensemble_top, "ensemble_rank", score=title_cosines)
            ensemble = np.maximum(ensemble, title_ensemble)

    adapter_cos = adapter_title_z = None
    adapter_ranks: dict[int, float] = {}
    if vocab.adapter is not None and vector is not None and len(vocab.tag_ids):
        adapter_cos = vocab.embeddings @ (vector @ vocab.adapter)
        if options.adapter_top:
            more_embedding_hits(adapter_cos, options.adapter_top, "adapter_rank", score=cosines)
        else:  # the rank is a feature even when the view proposes nothing (set below, on every candidate)
            adapter_ranks = {
                int(i): 1.0 - rank / ADAPTER_RANK_DEPTH
                for rank, i in enumerate(np.argsort(-adapter_cos)[:ADAPTER_RANK_DEPTH])
            }
        if title_vector is not None:
            adapter_title_z = _zscores(vocab.embeddings @ (title_vector @ vocab.adapter))
    adapter_z = _zscores(adapter_cos)

    chunk_z = None
    chunk_ranks: dict[int, float] = {}
    if options.chunk_top and chunk_vectors is not None and len(chunk_vectors) and len(vocab.tag_ids):
        per = vocab.embeddings @ np.asarray(chunk_vectors, dtype=np.float32).T  # (tags, chunks)
        sd = per.std(axis=0)
        chunk_z = ((per - per.mean(axis=0)) / np.where(sd > 1e-9, sd, 1.0)).max(axis=1)
        chunk_best = per.max(axis=1)
        for rank, i in enumerate(np.argsort(-chunk_z, kind="stable")[: options.chunk_top]):
            c = cand(vocab.tag_ids[int(i)])
            c.scores["embedding"] = max(c.scores.get("embedding", -1.0), float(chunk_best[i]))
            if "embedding" not in c.sources:
                c.sources.append("embedding")
            chunk_ranks[int(i)] = 1.0 - rank / options.chunk_top

    seed_rows: list[int] = []
    if options.related and text_hits:
        _related(cand, text_hits[:RELATED_SEEDS], vocab)
        index = vocab.index
        seed_rows = [index[t] for t in text_hits[:RELATED_SEEDS] if t in index]

    if neighbours:
        if options.similar_temperature > 0:
            best = max(nb.similarity for nb in neighbours)
            weights = [math.exp((nb.similarity - best) / options.similar_temperature) for nb in neighbours]
        else:
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
    best_cosine = float(cosines.max()) if cosines is not None and len(cosines) else 0.0
    title_z = _zscores(title_cosines)
    hub = vocab.embeddings @ vocab.centre if vocab.centre is not None and len(vocab.tag_ids) else None

    def fill(tag_id: int, c: Candidate) -> None:
        """Every candidate's features from the views above (also for candidates the head adds)."""
        i = index.get(tag_id)
        if cosines is not None and i is not None:
            c.features["embedding"] = float(cosines[i])
            c.features["embedding_z"] = float(z[i]) / 4  # type: ignore[index]
            c.features["embedding_centred"] = float(cosines[i] - (hub[i] if hub is not None else 0.0))
            c.features["embedding_gap"] = float(cosines[i] - best_cosine)
        if smooth_z is not None and structure is not None and i is not None:
            c.features["embedding_smooth"] = float(smooth_z[i]) / 4
            c.features["tag_density"] = float(structure.density[i])
            c.features["tag_children"] = float(structure.children[i])
        if ensemble is not None and use_z is not None and i is not None:
            c.features["use_z"] = float(use_z[i]) / 4
            c.features["ensemble_z"] = float(ensemble[i]) / 4
            if use_title_z is not None:
                c.features["use_title_z"] = float(use_title_z[i]) / 4
        if adapter_z is not None and i is not None:
            c.features["adapter_z"] = float(adapter_z[i]) / 4
            if i in adapter_ranks:
                c.features["adapter_rank"] = adapter_ranks[i]
            if adapter_title_z is not None:
                c.features["adapter_title_z"] = float(adapter_title_z[i]) / 4
        if title_cosines is not None and i is not None:
            c.features["title_embedding"] = float(title_cosines[i])
            c.features["title_embedding_z"] = float(title_z[i]) / 4  # type: ignore[index]
        if segment_cosines is not None and i is not None:
            c.features["segment_embedding"] = float(segment_cosines[i])
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
        if chunk_z is not None and i is not None:
            c.features["chunk_z"] = float(chunk_z[i]) / 4
            c.features["chunk_rank"] = chunk_ranks.get(i, 0.0)

    for tag_id, c in cands.items():
        fill(tag_id, c)
    if options.head_near and len(vocab.tag_ids) > 1:
        _head_near(cands, vocab, options.head_near, cand, fill, seed_rows)
    if "cooccur_top" in options.ranker_features:  # an evaluation arm's feature: the app's ranker does not read it
        _cooccur_top(cands, vocab)
    return cands


def _head_near(
    cands: dict[int, Candidate],
    vocab: Vocabulary,
    per_seed: int,
    cand: Any,
    fill: Any,
    seed_rows: Sequence[int],
) -> None:
    """Round 6's head neighbourhood: the ``HEAD_SEEDS`` best candidates of the hand-weighted order
    each propose their ``per_seed`` nearest tags by tag embedding (source "related": a generic or
    sibling tag next to what the video is confidently about, 美食 beside 火锅, whatever source found
    the seed); every candidate's ``head_near`` is its best cosine to a head tag other than itself."""
    items = list(cands.values())
    if not items:
        return
    index = vocab.index
    scores = weighted_sum(feature_matrix(items))
    head = [items[int(j)].tag_id for j in np.argsort(-scores, kind="stable")[:HEAD_SEEDS]]
    head_rows = [index[t] for t in head if t in index]
    if not head_rows:
        return
    k = min(per_seed, len(vocab.tag_ids) - 1)
    for row in head_rows:
        sims = vocab.embeddings @ vocab.embeddings[row]
        sims[row] = -np.inf
        for j in np.argpartition(-sims, k - 1)[:k]:
            tag_id = vocab.tag_ids[int(j)]
            is_new = tag_id not in cands
            c = cand(tag_id)
            c.scores["related"] = max(c.scores.get("related", 0.0), float(sims[j]))
            if "related" not in c.sources:
                c.sources.append("related")
            name = vocab.names[row]
            _related_evidence(
                c, {"field": "related", "from": name, "how": "near the head", "score": round(float(sims[j]), 3)}
            )
            if is_new:
                fill(tag_id, c)
                if seed_rows:
                    others = [float(vocab.embeddings[int(j)] @ vocab.embeddings[r]) for r in seed_rows if r != int(j)]
                    c.features["related_similar"] = max(0.0, max(others, default=0.0))
            else:
                c.features["agreement"] = len(set(c.sources)) / len(SOURCES)
    rows = [index.get(c.tag_id) for c in cands.values()]
    known = [r for r in rows if r is not None]
    sims = vocab.embeddings[known] @ vocab.embeddings[head_rows].T
    by_row = dict(zip(known, sims, strict=True))
    for c, r in zip(cands.values(), rows, strict=True):
        if r is None:
            continue
        others = [float(v) for v, hr in zip(by_row[r], head_rows, strict=True) if hr != r]
        c.features["head_near"] = max(0.0, max(others, default=0.0))


def _cooccur_top(cands: dict[int, Candidate], vocab: Vocabulary) -> None:
    """``cooccur_top``: a candidate's highest P(it | seed) over the ``COOCCUR_SEEDS`` best candidates of
    the hand-weighted order (itself excluded), times that seed's weighted-sum score, so a tag that
    tagged videos carry beside a confident candidate (海鲜 beside 龙虾, 美食 beside 火锅) rises."""
    if not vocab.cooccur or not cands:
        return
    items = list(cands.values())
    scores = weighted_sum(feature_matrix(items))
    top = max(float(scores.max()), 1e-9)
    seeds = [(items[int(i)].tag_id, float(scores[i]) / top) for i in np.argsort(-scores, kind="stable")[:COOCCUR_SEEDS]]
    for c in items:
        best = 0.0
        for seed, weight in seeds:
            if seed != c.tag_id:
                best = max(best, weight * vocab.cooccur.get(seed, {}).get(c.tag_id, 0.0))
        c.features["cooccur_top"] = best


def fit_adapter(
    vectors: np.ndarray, tag_lists: Sequence[Sequence[int]], vocab: Vocabulary, *, ridge: float = ADAPTER_RIDGE
) -> np.ndarray | None:
    """A linear map W learned from tagged videos: each video's vector times W should land on the mean
    vector of its tags (ridge regression pulled towards the identity, so with few videos it stays
    e5's own zero-shot view: W = (XᵀX + λI)⁻¹(XᵀT + λI)). It carries what the tags a team uses look
    like (生活记录, 美食, 搞笑 …) to tags and videos it never saw, unlike per-tag classifiers."""
    index = vocab.index
    rows = [
        (v, [index[t] for t in tags if t in index]) for v, tags in zip(vectors, tag_lists, strict=True) if len(tags)
    ]
    rows = [(v, ids) for v, ids in rows if ids]
    if not rows or not len(vocab.tag_ids):
        return None
    x = np.stack([v for v, _ in rows]).astype(np.float64)
    t = np.stack([vocab.embeddings[ids].mean(axis=0) for _, ids in rows]).astype(np.float64)
    eye = np.eye(x.shape[1])
    return np.linalg.solve(x.T @ x + ridge * eye, x.T @ t + ridge * eye).astype(np.float32)


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
    return np.array([[c.features[k] for k in FEATURES] for c in cands], dtype=np.float64).reshape(-1, len(FEATURES))


def weighted_sum(
    x: np.ndarray, weights: Mapping[str, float] | None = None, names: Sequence[str] | None = None
) -> np.ndarray:
    """The weights' average of the features (each in [0, 1]), so the score is in [0, 1] too; the
    columns of ``x`` are ``names`` (every feature by default)."""
    w = np.array([(weights or DEFAULT_WEIGHTS).get(k, 0.0) for k in (names or FEATURES)])
    return (x @ w) / w.sum()


def rank(
    cands: dict[int, Candidate],
    model: LinearModel | None,
    *,
    features: Sequence[str] | None = None,
    dedup: str = "none",
    vocab: Vocabulary | None = None,
    fusion: str = "none",
) -> list[Candidate]:
    """Score every candidate (the learned model over ``features``, else the weighted sum) and sort,
    best first; with ``fusion`` "rrf", the order is the reciprocal-rank fusion of that score's order
    and each source's (scores stay the model's); with ``dedup``, near-duplicates of a better tag move
    below the others' top."""
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
    if fusion == "rrf":
        fused = rrf_scores(items, x)
        order = sorted(range(len(items)), key=lambda i: (-fused[i], -items[i].score, items[i].tag_id))
        ordered = [items[i] for i in order]
    else:
        ordered = sorted(items, key=lambda c: (-c.score, c.tag_id))
    if dedup != "none" and vocab is not None:
        ordered = suppress_duplicates(ordered, vocab, use_cosine=dedup == "name+cos")
    return ordered


# The voters of reciprocal-rank fusion besides the ranker: each orders the candidates it has a
# positive value for (features' columns; the sources' own scores).
RRF_VOTERS = ("text_any", "embedding_rank", "title_embedding_rank", "similar", "related_cooccur", "prior")


def rrf_scores(items: Sequence[Candidate], x: np.ndarray, *, k: int = RRF_K) -> np.ndarray:
    """Reciprocal-rank fusion: sum over voters of 1 / (k + rank), rank 1 the voter's best; the voters
    are the ranker's score (every candidate) and ``RRF_VOTERS`` (a candidate the voter gives 0 gets
    nothing from it; text hits are ordered by their text score). No weights, nothing trained."""
    n = len(items)
    fused = np.zeros(n)
    lists: list[np.ndarray] = [np.array([c.score for c in items])]
    for name in RRF_VOTERS:
        col = x[:, FEATURES.index(name)].copy()
        if name == "text_any":
            col = np.array([c.scores.get("text", 0.0) if v > 0 else 0.0 for c, v in zip(items, col, strict=True)])
        lists.append(col)
    for values in lists:
        voted = np.flatnonzero(values > 0) if values is not lists[0] else np.arange(n)
        order = voted[np.argsort(-values[voted], kind="stable")]
        fused[order] += 1.0 / (k + 1 + np.arange(len(order)))
    return fused


def suppress_duplicates(ordered: list[Candidate], vocab: Vocabulary, *, use_cosine: bool) -> list[Candidate]:
    """Among the best ``DEDUP_DEPTH``, a tag whose name contains or is contained in a better-placed
    tag's name (虾 under 龙虾, 直播间 under 直播), or (``use_cosine``) whose tag embedding is within
    ``DEDUP_COSINE`` of one, moves after the non-duplicates of that depth. Scores are unchanged."""
    index = vocab.index
    head, tail = ordered[:DEDUP_DEPTH], ordered[DEDUP_DEPTH:]
    kept: list[Candidate] = []
    moved: list[Candidate] = []
    for c in head:
        i = index.get(c.tag_id)
        name = vocab.names[i] if i is not None else ""
        dup = False
        for k in kept:
            j = index.get(k.tag_id)
            if i is None or j is None:
                continue
            other = vocab.names[j]
            contained = bool(name) and (name in other or other in name)
            dup = contained or (use_cosine and float(vocab.embeddings[i] @ vocab.embeddings[j]) >= DEDUP_COSINE)
            if dup:
                break
        (moved if dup else kept).append(c)
    return kept + moved + tail


def fit_linear(x: np.ndarray, y: np.ndarray, *, c: float = 1.0, seed: int = 0) -> LinearModel:
    """Logistic regression on standardised features (class-balanced)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    clf.fit((x - mean) / scale, y)
    return LinearModel(coef=clf.coef_[0].copy(), intercept=float(clf.intercept_[0]), mean=mean, scale=scale)


def fit_pairwise(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, c: float = 1.0, seed: int = 0, max_pairs: int = 400
) -> LinearModel:
    """A linear ranker fitted on pairs: within each group (one video's candidates), every accepted
    candidate against every other (at most ``max_pairs`` per group, drawn at random), logistic
    regression on standardised feature differences (both orders, no intercept); then its score is
    Platt-scaled on the candidates themselves so it stays a probability for thresholds."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = (x - mean) / scale
    rng = np.random.default_rng(seed)
    diffs: list[np.ndarray] = []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        pos, neg = rows[y[rows] == 1], rows[y[rows] == 0]
        if not len(pos) or not len(neg):
            continue
        pairs = np.array([(p, q) for p in pos for q in neg])
        if len(pairs) > max_pairs:
            pairs = pairs[rng.choice(len(pairs), max_pairs, replace=False)]
        diffs.append(xs[pairs[:, 0]] - xs[pairs[:, 1]])
    if not diffs:
        return fit_linear(x, y, c=c, seed=seed)
    d = np.vstack(diffs)
    clf = LogisticRegression(C=c, fit_intercept=False, max_iter=2000, random_state=seed)
    clf.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), np.zeros(len(d))])
    w = clf.coef_[0]
    platt = LogisticRegression(C=1e4, class_weight="balanced", max_iter=2000)
    platt.fit((xs @ w)[:, None], y)
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return LinearModel(coef=w * a, intercept=b, mean=mean, scale=scale)


def fit_listwise(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    c: float = 1.0,
    towards: np.ndarray | None = None,
) -> LinearModel:
    """A linear ranker fitted per video: softmax over each group's (one video's) candidates, the
    target spread evenly over its accepted ones (ListNet's top-one cross-entropy), every video
    weighing the same whatever its number of candidates; ``c`` × the summed loss + ½‖w − w₀‖², where
    w₀ is 0, or (``towards``: raw feature weights such as the hand-set sum's) that direction in the
    standardised space scaled by the best single factor (a 1-D fit first), so little data moves the
    order away from the hand-set one only as far as it pays. Then Platt-scaled like ``fit_pairwise``."""
    from scipy.optimize import minimize, minimize_scalar
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = (x - mean) / scale
    blocks = []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        pos = y[rows] == 1
        if pos.any() and not pos.all():
            blocks.append((xs[rows], pos / pos.sum()))
    if not blocks:
        return fit_linear(x, y, c=c)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for xb, target in blocks:
            s = xb @ w
            s = s - s.max()
            p = np.exp(s)
            p /= p.sum()
            total -= float(target @ (s - np.log(np.exp(s).sum())))
            grad += xb.T @ (p - target)
        return total, grad

    dim = xs.shape[1]
    w0 = np.zeros(dim)
    if towards is not None:
        direction = towards * scale
        norm = float(np.linalg.norm(direction))
        if norm > 0:
            direction = direction / norm
            best = minimize_scalar(lambda a: loss(a * direction)[0], bounds=(0.0, 50.0), method="bounded")
            w0 = float(best.x) * direction

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = loss(w)
        return c * value + 0.5 * float((w - w0) @ (w - w0)), c * grad + (w - w0)

    w = minimize(objective, w0.copy(), jac=True, method="L-BFGS-B").x
    platt = LogisticRegression(C=1e4, class_weight="balanced", max_iter=2000)
    platt.fit((xs @ w)[:, None], y)
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return LinearModel(coef=w * a, intercept=b, mean=mean, scale=scale)


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
