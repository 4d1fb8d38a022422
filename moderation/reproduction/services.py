"""Writes of the reproduction wing: indexing a ready video's hashes, retrieving candidate originals,
scoring pairs, the pair review queue (claims, verdicts) and reproduction clusters."""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from moderation.errors import ModerationError, dismissed_already
from moderation.media.models import Keyframe, Video
from moderation.reproduction import features as pair_features
from moderation.reproduction import matching, selectors
from moderation.reproduction.models import (
    ClusterMembership,
    FrameHash,
    PairReview,
    ReproCandidate,
    ReproRetrievalFailure,
)
from workbench.queues import enqueue
from workbench.storage import MediaMissing, cached_copy

logger = logging.getLogger(__name__)

TOP_K = 10
# How many seconds of the query video are looked up by frame embedding (evenly spread).
FRAME_QUERIES = 8
# Nearest keyframes of other videos kept per query keyframe.
FRAME_K = 20
# Embedding neighbours below these similarities are not candidates on their own.
FRAME_SIM_MIN = 0.85
VIDEO_SIM_MIN = 0.85  # the video embeddings' (a mean is no less similar than its frames: the frames' bar)
TEXT_SIM_MIN = 0.6
# Nearest videos kept by video embedding.
VIDEO_K = 20


# --- the PDQ index ---------------------------------------------------------------------------------


def _mirror_hash(path: Path) -> str:
    """PDQ of the horizontally flipped image (worker side: numpy and pdqhash are imported here)."""
    import numpy as np
    import pdqhash
    from PIL import Image

    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    bits, _quality = pdqhash.compute(np.ascontiguousarray(rgb[:, ::-1, :]))
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:064x}"


def _index_lock() -> None:
    """Serialise the writers of the index rows (inside their transaction, until it commits).

    Two reasons. Two writers of the same video (a redelivered ``find_candidates`` next to a rebuild)
    could otherwise both delete the old rows, neither seeing the other's uncommitted new ones, and both
    insert: every second of the video would be indexed twice. And the processes' copies of the index
    (``pdq_index``) read new rows by id (``WHERE id > last seen``): ids allocated and committed one
    writer at a time become visible in id order, so no row can appear below one already read. A writer
    holds it for one delete and one insert of a video's ~30 rows (the mirrored hashes are computed before).
    """
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('repro-index', 0))")


def frame_hashes_index(*, video_id: int) -> int:
    """(Re)build a video's rows in the PDQ index from its 1 fps keyframes; returns how many.

    Idempotent: the video's rows are replaced in one transaction, under the index writers' lock, so
    concurrent writers of the same video leave exactly one copy. Needs the media pipeline's hashes.
    """
    keyframes = list(Keyframe.objects.filter(video_id=video_id).exclude(pdq_hash="").order_by("index"))
    rows = []
    for kf in keyframes:
        mirror = ""
        if kf.image:
            try:
                mirror = _mirror_hash(cached_copy(kf.image.name))
            except (OSError, ValueError, MediaMissing):
                logger.warning("keyframe %s: image unreadable or missing, indexed without its mirrored hash", kf.pk)
        quality = kf.pdq_quality or 0
        rows.append(
            FrameHash(
                video_id=video_id, keyframe_id=kf.pk, t=kf.timestamp, quality=quality,
                hash=matching.hex_to_bits(kf.pdq_hash), hash_mirror=matching.hex_to_bits(mirror) if mirror else None,
            )
        )  # fmt: skip
    with transaction.atomic():
        _index_lock()
        FrameHash.objects.filter(video_id=video_id).delete()
        FrameHash.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


# The per-keyframe HNSW index (not in the schema since migration 0029): what REPRO_FRAME_NEIGHBOURS keyframes / both read.
KEYFRAME_INDEX = "keyframe_embedding_hnsw"
KEYFRAME_INDEX_SQL = (
    "CREATE INDEX {concurrently} IF NOT EXISTS keyframe_embedding_hnsw ON moderation_keyframe"
    " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)


def keyframe_index_set(*, present: bool) -> bool:
    """Build (``present``) or drop the per-keyframe HNSW index; True when that changed anything. Outside a
    transaction it is built and dropped CONCURRENTLY (workers keep inserting keyframes meanwhile; a build over
    1.6M keyframe rows takes most of an hour on 2 cores); inside one, plainly (rolled back with it)."""
    from moderation.reproduction.selectors import keyframe_index_exists

    if keyframe_index_exists() == present:
        return False
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    with connection.cursor() as cur:
        # Not valid means absent or left invalid by an interrupted concurrent build: dropped before building again.
        if connection.in_atomic_block:  # the transaction's deferred foreign-key checks now: no index is built over
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # pending trigger events; Django's are deferred again below
        cur.execute(f"DROP INDEX {concurrently} IF EXISTS {KEYFRAME_INDEX}")
        if present:
            cur.execute(KEYFRAME_INDEX_SQL.format(concurrently=concurrently))
        if connection.in_atomic_block:
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
    return True


def video_embedding_refresh(*, video_id: int) -> bool:
    """(Re)compute a video's one-vector picture (``Video.visual_embedding``: the normalized mean of its keyframe
    embeddings, ``analyzers.video_embedding``) from its keyframes; True when it has one. The media pipeline writes it
    as the video becomes ready (the only writer on the serving path); ``rebuild_repro_index`` calls this for the
    videos it rebuilds, and its ``--missing`` for videos processed before the vector existed.
    Idempotent (one UPDATE of one row; a row lock is the only serialisation it needs)."""
    from moderation.media.analyzers import video_embedding

    vectors = Keyframe.objects.filter(video_id=video_id, embedding__isnull=False).values_list("embedding", flat=True)
    vector = video_embedding([v for v in vectors if v is not None])
    Video.objects.filter(pk=video_id).update(visual_embedding=vector)
    return vector is not None


@dataclass(frozen=True)
class IndexRebuildProgress:
    done: int  # videos handled so far
    total: int
    rows: int  # index rows written so far
    removed: int  # rows dropped because their video is no longer ready
    vectors_swept: int = 0  # distinct embeddings no video holds any more, dropped (a full rebuild)


def repro_index_rebuild(
    *, video_ids: Sequence[int] | None = None, missing_only: bool = False,
    progress: Callable[[IndexRebuildProgress], None] | None = None, progress_every: int = 100,
) -> IndexRebuildProgress:  # fmt: skip
    """Rebuild the PDQ index and the video embeddings from the keyframes: every ready video (or ``video_ids``), one
    video at a time.

    Safe while workers run: each video is replaced in its own short transaction under the same index
    writers' lock ``find_candidates`` takes, so retrieval never sees a half-written video and a video that becomes
    ready meanwhile is indexed once (by whichever writer comes last). Idempotent: a second run writes the
    same rows. ``missing_only`` indexes only ready videos without rows or without a video embedding (catching up after
    an outage, or after the upgrade that added the embedding). A
    full rebuild also drops the rows of videos that are no longer ready (failed, or being reprocessed:
    their task re-indexes them when they are ready again) and sweeps the distinct embeddings (``distinct_vectors_sweep``).
    Candidate pairs are not recomputed.
    """
    ready = Video.objects.filter(status=Video.Status.READY)
    if video_ids is not None:
        ready = ready.filter(pk__in=list(video_ids))
    if missing_only:  # no index rows, or keyframe embeddings but no video embedding yet
        indexed = FrameHash.objects.filter(video_id=OuterRef("pk"))
        embedded = Keyframe.objects.filter(video_id=OuterRef("pk"), embedding__isnull=False)
        ready = ready.filter(~Exists(indexed) | (Q(visual_embedding__isnull=True) & Exists(embedded)))
    ids = list(ready.order_by("pk").values_list("pk", flat=True))
    removed = 0
    if video_ids is None and not missing_only:
        stale = FrameHash.objects.exclude(video__status=Video.Status.READY)
        removed, _ = stale.delete()
    state = IndexRebuildProgress(done=0, total=len(ids), rows=0, removed=removed)
    for n, video_id in enumerate(ids, 1):
        # Re-checked per video: one that left "ready" since the list was read is not indexed again.
        written = 0
        if ready.filter(pk=video_id).exists():
            written = frame_hashes_index(video_id=video_id)
            video_embedding_refresh(video_id=video_id)
        state = IndexRebuildProgress(done=n, total=len(ids), rows=state.rows + written, removed=removed)
        if progress is not None and (n % progress_every == 0 or n == len(ids)):
            progress(state)
    if video_ids is None and not missing_only:
        state = dataclasses.replace(state, vectors_swept=distinct_vectors_sweep())
    return state


def distinct_vectors_sweep() -> int:
    """Drop the distinct embeddings (``TranscriptVector``, ``PictureVector``) that no video holds any more (a video's
    old vector after it was embedded again, a deleted video's), and register any a video holds that is missing; returns
    how many were dropped. Left alone they only cost the scans a place each (they read two more vectors than asked).
    The second statement repairs the one race: a video keyed, uncommitted, to a vector the first is dropping."""
    swept = 0
    with connection.cursor() as cur:
        for table, key, column in (
            ("moderation_transcriptvector", "text_key", "text_embedding"),
            ("moderation_picturevector", "visual_key", "visual_embedding"),
        ):
            cur.execute(
                f"DELETE FROM {table} d WHERE NOT EXISTS (SELECT 1 FROM moderation_video v WHERE v.{key} = d.key)"
            )
            swept += cur.rowcount
            cur.execute(
                f"INSERT INTO {table} (key, embedding) SELECT DISTINCT ON (v.{key}) v.{key}, v.{column}"
                f" FROM moderation_video v WHERE v.{key} IS NOT NULL"
                f" AND NOT EXISTS (SELECT 1 FROM {table} d WHERE d.key = v.{key}) ON CONFLICT (key) DO NOTHING"
            )
    return swept


# The distinct-vector tables: (table, the video's key column, the video's embedding column).
_VECTOR_TABLES = (
    ("moderation_transcriptvector", "text_key", "text_embedding"),
    ("moderation_picturevector", "visual_key", "visual_embedding"),
)


def distinct_vectors_sweep_step(*, batch: int | None = None) -> int:
    """One step of the periodic sweep of the distinct vectors (``TranscriptVector``, ``PictureVector``): per table,
    the next ``batch`` keys (``settings.REPRO_VECTOR_SWEEP_BATCH``) after where the last step stopped
    (``VectorSweep``; past the last key it starts over), those no video holds dropped; returns how many.

    Incremental: a step reads one batch of each table by primary key and probes the videos' key index once per key,
    whatever the library's size; a pass over a table of N vectors takes N / batch steps. Idempotent and safe to run
    twice at once: each table's ``VectorSweep`` row is locked for its step, a redelivered step sweeps the next batch.
    A video written with a key while the step drops that vector (its transaction not yet committed, so the step did
    not see it, and its trigger saw the vector still there) would be left without one: the next step, minutes later,
    registers the vectors of every key the last one dropped that a video holds now.
    """
    from moderation.reproduction.models import VectorSweep

    size = max(1, int(batch if batch is not None else settings.REPRO_VECTOR_SWEEP_BATCH))
    swept = 0
    for table, key, column in _VECTOR_TABLES:
        with transaction.atomic():
            VectorSweep.objects.get_or_create(table=table)
            state = VectorSweep.objects.select_for_update().get(table=table)
            with connection.cursor() as cur:
                if state.dropped:  # the last step's, re-checked now that any write in flight then has committed
                    cur.execute(
                        f"INSERT INTO {table} (key, embedding) SELECT DISTINCT ON (v.{key}) v.{key}, v.{column}"
                        f" FROM moderation_video v WHERE v.{key} = ANY(%s::uuid[]) ON CONFLICT (key) DO NOTHING",
                        [[str(k) for k in state.dropped]],
                    )
                # The batch by the primary key, each key probed once in the videos' key index (a lateral LIMIT 1: a
                # merge anti-join would read that index from its first key, a join of the batch to the table all of
                # the table); then only the orphans are deleted, by key.
                after = "" if state.after is None else "WHERE key > %s"
                cur.execute(
                    f"WITH batch AS MATERIALIZED (SELECT key FROM {table} {after} ORDER BY key LIMIT %s)"
                    " SELECT (SELECT key FROM batch ORDER BY key DESC LIMIT 1), (SELECT count(*) FROM batch),"
                    " ARRAY(SELECT b.key FROM batch b LEFT JOIN LATERAL"
                    f" (SELECT 1 AS held FROM moderation_video v WHERE v.{key} = b.key LIMIT 1) h ON true"
                    " WHERE h.held IS NULL)",
                    [*([state.after] if after else []), size],
                )
                last, seen, orphans = cur.fetchone()
                gone: list[Any] = []
                if orphans:  # checked again as they are deleted: a video may have taken one meanwhile
                    cur.execute(
                        f"DELETE FROM {table} d WHERE d.key = ANY(%s::uuid[]) AND NOT EXISTS"
                        f" (SELECT 1 FROM moderation_video v WHERE v.{key} = d.key) RETURNING d.key",
                        [[str(k) for k in orphans]],
                    )
                    gone = [row[0] for row in cur.fetchall()]
            state.after = last if seen == size else None  # a short batch: the table's end, start over next time
            state.dropped = list(gone)
            state.save(update_fields=["after", "dropped", "updated_at"])
            swept += len(gone)
    return swept


# --- retrieval ---------------------------------------------------------------------------------------


def candidates_retrieve(
    *, video_id: int, threshold: int = matching.DEFAULT_THRESHOLD, top_k: int = TOP_K
) -> dict[int, dict[str, Any]]:
    """Candidate videos for ``video_id`` from the three indexes, each with its retrieval evidence.

    Returns ``{other_video_id: {"hash_hits": [...], "frame_matches": [...], "video_sim": float, "text_sim": float}}``
    (``frame_matches`` only with ``REPRO_FRAME_NEIGHBOURS`` keyframes or both) for
    at most ``3 * top_k`` videos (a read: nothing is written).
    """
    # The two HNSW scans go first (each on a side connection, outside transactions) and walk their graphs while this
    # process searches its PDQ copy and confirms the hits on its own connection; then their rows are read
    # (bench/RESULTS.md, issue 20). Inside a transaction nothing is sent: ``result`` runs one statement here.
    pending = selectors.video_neighbours_send(
        video_id=video_id, frame_queries=FRAME_QUERIES, k_frames=FRAME_K, k_text=top_k, k_videos=VIDEO_K
    )
    try:
        queries, mark = selectors.hash_queries_marked(video_id)  # the catch-up's mark in the same round trip
        # A farm of reposts (a thousand videos with one set of hashes) yields its earliest 3 * top_k per hash, not
        # every row: at most 3 * top_k candidates are kept (bench/repro_duplicates.py; bench/RESULTS.md, issue 20).
        hits = selectors.hash_hits(
            queries=queries, exclude_video_id=video_id, threshold=threshold, mark=mark, per_hash=3 * top_k
        )
    except BaseException:
        pending.discard()
        raise
    neighbours = pending.result()
    found: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"hash_hits": [], "frame_matches": [], "video_sim": 0.0, "text_sim": 0.0}
    )
    for hit in hits:
        found[hit.video_id]["hash_hits"].append(hit)
    for other, sim in neighbours.videos:
        if sim >= VIDEO_SIM_MIN:
            found[other]["video_sim"] = round(sim, 4)
    for other, t, qt, sim in neighbours.frames:
        if sim >= FRAME_SIM_MIN:
            found[other]["frame_matches"].append({"t": qt, "t_orig": t, "sim": round(sim, 4)})
    for other, sim in neighbours.text:
        if sim >= TEXT_SIM_MIN:
            found[other]["text_sim"] = sim

    def strength(item: tuple[int, dict[str, Any]]) -> tuple[float, ...]:
        ev = item[1]
        seconds = len({h.query_t for h in ev["hash_hits"]})
        best_frame = max([m["sim"] for m in ev["frame_matches"]] + [ev["video_sim"]])
        return (seconds, best_frame + ev["text_sim"])

    ranked = sorted(found.items(), key=strength, reverse=True)[: 3 * top_k]
    return dict(ranked)


def retrieval_score(features: dict[str, float]) -> float:
    """A transparent score before any student exists: aligned hash coverage first, embeddings second."""
    coverage = max(features["coverage_copy"], features["coverage_original"])
    frame = max(0.0, (features["frame_sim_max"] - 0.5) / 0.5)
    text = max(0.0, features["transcript_sim"])
    return round(min(1.0, 0.6 * coverage + 0.2 * frame + 0.2 * text), 4)


def _oriented(a: Video, b: Video) -> tuple[Video, Video]:
    """(copy, original): the later upload is the candidate copy."""
    return (a, b) if (a.created_at, a.pk) > (b.created_at, b.pk) else (b, a)


def repro_candidates_refresh(
    *, video_id: int, threshold: int = matching.DEFAULT_THRESHOLD, top_k: int = TOP_K
) -> list[ReproCandidate]:
    """Index a ready video and record its top candidate pairs with their evidence, features and scores.

    The search covers every indexed video, earlier or later (whichever finished processing first);
    each pair is stored with the later upload as ``video`` and the earlier as ``original``. Idempotent:
    pairs are updated in place (unique per pair), verdicts and claims are left alone.
    """
    video = Video.objects.filter(pk=video_id).first()
    if video is None:
        raise ModerationError(f"Video {video_id} does not exist.")
    if video.status != Video.Status.READY:
        raise ModerationError(f"Video {video_id} is not processed yet ({video.get_status_display()}).")
    frame_hashes_index(video_id=video_id)
    found = candidates_retrieve(video_id=video_id, threshold=threshold, top_k=top_k)
    others = {v.pk: v for v in Video.objects.filter(pk__in=list(found))}
    scored: list[
        tuple[float, Video, Video, dict[str, float], dict[str, Any]]
    ] = []  # score, copy, original, features, evidence
    for other_id, ev in found.items():
        other = others.get(other_id)
        if other is None:
            continue
        copy, original = _oriented(video, other)
        features, alignment = pair_features.pair_features_compute(copy_id=copy.pk, original_id=original.pk)
        frame_matches = ev["frame_matches"]
        if copy.pk != video.pk:  # the evidence was gathered from the other side: swap the times
            frame_matches = [{"t": m["t_orig"], "t_orig": m["t"], "sim": m["sim"]} for m in frame_matches]
        evidence: dict[str, Any] = {
            "alignment": alignment.as_evidence(),
            "frame_matches": sorted(frame_matches, key=lambda m: -m["sim"])[:20],
            "video_sim": ev["video_sim"],
            "text_sim": round(features["transcript_sim"], 4),
            "sources": [
                name
                for name, hit in (
                    ("pdq", ev["hash_hits"]),
                    ("video", ev["video_sim"]),
                    ("frames", frame_matches),
                    ("text", ev["text_sim"]),
                )  # fmt: skip
                if hit
            ],
            "threshold": threshold,
        }
        scored.append((retrieval_score(features), copy, original, features, evidence))
    scored.sort(key=lambda s: s[0], reverse=True)
    from moderation.reproduction import student

    predictor = student.student_load()
    out = []
    with transaction.atomic():
        for rank, (score, copy, original, features, evidence) in enumerate(scored[:top_k]):
            prediction = predictor.predict_one(features) if predictor is not None else None
            candidate, _ = ReproCandidate.objects.update_or_create(
                video=copy, original=original,
                defaults={
                    "rank": rank, "retrieval_score": score, "hash_score": max(features["coverage_copy"], features["coverage_original"]),
                    "frame_similarity": features["frame_sim_max"], "text_similarity": features["transcript_sim"],
                    "offset": evidence["alignment"]["offset"], "evidence": evidence, "features": features,
                    "student_score": prediction.score if prediction else None,
                    "student_label": prediction.label if prediction else "",
                    "student_model": predictor.name if predictor is not None else "",
                    "score": prediction.score if prediction else score,
                    "scored_with": pair_features.PAIR_SCORER_VERSION,
                },
            )  # fmt: skip
            out.append(candidate)
        ReproRetrievalFailure.objects.filter(video_id=video_id).delete()
    return out


def repro_retrieval_failure_record(
    *, video_id: int, error: str, attempts: int, listed_only: bool = False
) -> ReproRetrievalFailure | None:
    """Record that the video's reproduction candidates were given up on (the ops page lists it, a dismissal made
    before this failure no longer holds); None when the video is gone. ``listed_only``: only for a video the ops
    page lists (an operator's retry that could not search: it says why, instead of "queued" for good; a dismissed one
    stays dismissed)."""
    if not Video.objects.filter(pk=video_id).exists():
        return None
    if listed_only and not ReproRetrievalFailure.objects.filter(video_id=video_id, dismissed_at__isnull=True).exists():
        return None
    failure, _ = ReproRetrievalFailure.objects.update_or_create(
        video_id=video_id,
        defaults={
            "error": error[:2000], "attempts": attempts, "failed_at": timezone.now(),
            "dismissed_at": None, "dismissed_by": None,
        },
    )  # fmt: skip
    return failure


def _retrieval_failure_locked(video_id: int) -> ReproRetrievalFailure:
    failure = (
        ReproRetrievalFailure.objects.select_for_update(of=("self",))
        .select_related("dismissed_by")
        .filter(video_id=video_id)
        .first()
    )
    if failure is None:
        raise ModerationError(
            f"Video #{video_id} is not listed without reproduction candidates any more: a search found them "
            "since, or the video was deleted. Nothing to do."
        )
    return failure


@transaction.atomic
def repro_retrieval_retry(*, video_id: int, by: User) -> ReproRetrievalFailure:
    """The ops page's Retry on a video whose reproduction candidates were given up on: queue the search
    (``find_candidates``, media queue) once more, after this transaction commits, and clear a dismissal; the audit
    log keeps who asked and the error it had (``repro_retrieval.retry``). The search deletes the row when it finds
    the candidates, or records its new error. Refused with a message while a retry is on its way (a double click:
    one task, not two) and when the row is gone."""
    from moderation.review.services import audit_event_record

    failure = _retrieval_failure_locked(video_id)
    now = timezone.now()
    if failure.is_queued(now=now):
        assert failure.queued_at is not None  # is_queued says so
        raise ModerationError(
            f"The search for video #{video_id}'s reproduction candidates is queued already (since "
            f"{timezone.localtime(failure.queued_at):%Y-%m-%d %H:%M}): wait for its outcome."
        )
    failure.queued_at, failure.dismissed_at, failure.dismissed_by = now, None, None
    failure.save(update_fields=["queued_at", "dismissed_at", "dismissed_by"])
    enqueue("moderation.reproduction.tasks.find_candidates", video_id)
    audit_event_record(
        actor=by,
        action="repro_retrieval.retry",
        obj=Video(pk=video_id),
        payload={"error": failure.error[:500], "attempts": failure.attempts},
    )
    logger.info("reproduction candidates of video %s queued again by %s", video_id, by.get_username())
    return failure


@transaction.atomic
def repro_retrieval_dismiss(*, video_id: int, by: User) -> ReproRetrievalFailure:
    """The ops page's Dismiss on a video whose reproduction candidates were given up on: recorded with who and when
    (``dismissed_at``, ``dismissed_by``, the audit log's ``repro_retrieval.dismiss``), it leaves the list (counted
    apart); the video is simply not compared with earlier uploads. Refused with a message when it was dismissed
    already (a double click), while a retry is on its way, and when the row is gone."""
    from moderation.review.services import audit_event_record

    failure = _retrieval_failure_locked(video_id)
    if failure.dismissed_at is not None:
        raise dismissed_already(video_id=video_id, by=failure.dismissed_by, at=failure.dismissed_at)
    if failure.is_queued(now=timezone.now()):
        raise ModerationError(
            f"A retry of video #{video_id}'s search is on its way: wait for its outcome before dismissing it."
        )
    failure.dismissed_at, failure.dismissed_by = timezone.now(), by
    failure.save(update_fields=["dismissed_at", "dismissed_by"])
    audit_event_record(
        actor=by,
        action="repro_retrieval.dismiss",
        obj=Video(pk=video_id),
        payload={"error": failure.error[:500], "attempts": failure.attempts},
    )
    return failure


def candidates_rescore(*, candidates: list[ReproCandidate] | None = None) -> int:
    """Score pairs with the current student (all unreviewed pairs when none given)."""
    from moderation.reproduction import student

    predictor = student.student_load()
    if predictor is None:
        return 0
    rows = candidates if candidates is not None else list(ReproCandidate.objects.filter(review__isnull=True))
    for c in rows:
        prediction = predictor.predict_one(c.features)
        c.student_score, c.student_label, c.student_model = prediction.score, prediction.label, predictor.name
        c.score = prediction.score
    ReproCandidate.objects.bulk_update(
        rows, ["student_score", "student_label", "student_model", "score"], batch_size=500
    )
    return len(rows)


@dataclass
class PairRescore:
    """What ``candidates_features_rescore`` did: pairs measured again, how many of them changed, those it could
    not measure (``failed``: pk, error; left as they were, tried again by the next run), and what is left."""

    rescored: list[int] = dataclasses.field(default_factory=list)
    changed: int = 0
    failed: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    left: int = 0


def candidates_outdated(*, mirrored_only: bool = False) -> Any:
    """Pairs whose features an older pair scorer measured (``ReproCandidate.scored_with``), in id order;
    ``mirrored_only``: only those whose match needed flipping the copy (their frame similarity read negative
    before ``PAIR_SCORER_VERSION`` 2)."""
    qs = ReproCandidate.objects.filter(scored_with__lt=pair_features.PAIR_SCORER_VERSION)
    if mirrored_only:
        qs = qs.filter(Q(features__mirrored=1) | Q(evidence__alignment__mirrored=True))
    return qs.order_by("pk")


def candidates_features_rescore(
    *,
    mirrored_only: bool = False,
    batch: int = 200,
    limit: int | None = None,
    progress: Callable[[PairRescore], None] | None = None,
) -> PairRescore:
    """Measure again, with the current pair scorer, the stored pairs an older one measured
    (``candidates_outdated``): their features, frame and text similarity, hash score, alignment, retrieval
    score and queue score (the student's when one exists). Verdicts, claims, ranks and frame matches stay.

    ``batch`` pairs a transaction: each pair is measured outside it (reads only), then written under its row
    lock and marked with the scorer's version, so a run stopped midway resumes where it stopped and a second
    run finds nothing to do (idempotent). A pair that cannot be measured is reported and left for the next run.
    At most ``limit`` pairs a run."""
    from moderation.reproduction import student

    predictor = student.student_load()
    result = PairRescore()
    after = 0
    while limit is None or len(result.rescored) + len(result.failed) < limit:
        room = batch if limit is None else min(batch, limit - len(result.rescored) - len(result.failed))
        chunk = list(candidates_outdated(mirrored_only=mirrored_only).filter(pk__gt=after)[:room])
        if not chunk:
            break
        after = chunk[-1].pk
        measured: dict[int, tuple[dict[str, float], matching.Alignment]] = {}
        for pair in chunk:
            try:
                measured[pair.pk] = pair_features.pair_features_compute(
                    copy_id=pair.video_id, original_id=pair.original_id
                )
            except Exception as exc:  # one unreadable pair must not stop the others
                logger.exception("pair %s could not be measured again", pair.pk)
                result.failed.append((pair.pk, str(exc) or exc.__class__.__name__))
        with transaction.atomic():
            rows = list(
                ReproCandidate.objects.select_for_update()
                .filter(pk__in=list(measured), scored_with__lt=pair_features.PAIR_SCORER_VERSION)
                .order_by("pk")
            )
            for row in rows:
                features, alignment = measured[row.pk]
                before = (row.features, row.score)
                score = retrieval_score(features)
                prediction = predictor.predict_one(features) if predictor is not None else None
                row.features = features
                row.frame_similarity = features["frame_sim_max"]
                row.text_similarity = features["transcript_sim"]
                row.hash_score = max(features["coverage_copy"], features["coverage_original"])
                row.retrieval_score = score
                row.offset = alignment.as_evidence()["offset"]
                row.evidence = {
                    **row.evidence,
                    "alignment": alignment.as_evidence(),
                    "text_sim": round(features["transcript_sim"], 4),
                }
                if prediction is not None and predictor is not None:
                    row.student_score, row.student_label = prediction.score, prediction.label
                    row.student_model = predictor.name
                row.score = prediction.score if prediction is not None else score
                row.scored_with = pair_features.PAIR_SCORER_VERSION
                row.updated_at = timezone.now()
                result.changed += (row.features, row.score) != before
                result.rescored.append(row.pk)
            ReproCandidate.objects.bulk_update(
                rows,
                [
                    "features",
                    "frame_similarity",
                    "text_similarity",
                    "hash_score",
                    "retrieval_score",
                    "offset",
                    "evidence",
                    "student_score",
                    "student_label",
                    "student_model",
                    "score",
                    "scored_with",
                    "updated_at",
                ],
            )
        if progress is not None:
            progress(result)
    result.left = candidates_outdated(mirrored_only=mirrored_only).count()
    return result


# --- the pair queue ------------------------------------------------------------------------------------


def _lease_end() -> Any:
    return timezone.now() + timedelta(seconds=int(settings.REVIEW_LEASE_SECONDS))


def pair_claim_next(*, user: User, threshold: float = selectors.PAIR_QUEUE_THRESHOLD) -> ReproCandidate | None:
    """Give the reviewer the pair they already hold, else the highest-scoring free one (SKIP LOCKED)."""
    now = timezone.now()
    with transaction.atomic():
        mine = selectors.pairs_held_by(
            user=user, pairs=ReproCandidate.objects.select_for_update(skip_locked=True, of=("self",))
        ).first()
        if mine is not None:
            return mine
        # Never a pair with a video hidden from the reviewer (a restricted review queue's content).
        candidate = (
            selectors.pairs_open_to(
                user=user, pairs=ReproCandidate.objects.select_for_update(skip_locked=True, of=("self",))
            )
            .filter(score__gte=threshold, review__isnull=True)
            .filter(Q(claimed_by__isnull=True) | Q(lease_expires_at__lt=now))
            .order_by("-score", "id")
            .first()
        )
        if candidate is None:
            return None
        candidate.claimed_by, candidate.claimed_at, candidate.lease_expires_at = user, now, _lease_end()
        candidate.save(update_fields=["claimed_by", "claimed_at", "lease_expires_at", "updated_at"])
        _audit(user, "repro_pair_claim", candidate, {})
        return candidate


def pair_claim(*, candidate: ReproCandidate, user: User) -> ReproCandidate:
    """Claim this pair (opened from a video's page, not handed out by the queue), unless it has a verdict or someone
    else's claim on it is live. One the user already holds is theirs again with a fresh lease."""
    now = timezone.now()
    with transaction.atomic():
        locked = ReproCandidate.objects.select_for_update().get(pk=candidate.pk)
        if PairReview.objects.filter(candidate=locked).exists():
            raise ModerationError("Already reviewed: this pair has a recorded verdict.")
        holder = selectors.pair_held_by_other(candidate=locked, user=user)
        if holder is not None:
            until = timezone.localtime(locked.lease_expires_at).strftime("%H:%M")
            raise ModerationError(f"{holder.get_username()} holds this pair until {until}; it was not claimed for you.")
        locked.claimed_by, locked.claimed_at, locked.lease_expires_at = user, now, _lease_end()
        locked.save(update_fields=["claimed_by", "claimed_at", "lease_expires_at", "updated_at"])
        _audit(user, "repro_pair_claim", locked, {"chosen": True})
        return locked


def pair_review_submit(*, candidate: ReproCandidate, user: User, verdict: str, note: str = "") -> PairReview:
    """Record a reviewer's verdict on a pair they hold; a reproduction joins the two videos' clusters."""
    if verdict not in ReproCandidate.Label.values:
        raise ModerationError("Choose reproduction, derivative or unrelated.")
    from moderation.review.services import review_note_checked

    note = review_note_checked(note)  # a long note was cut at 2,000 characters without a word
    with transaction.atomic():
        locked = ReproCandidate.objects.select_for_update().get(pk=candidate.pk)
        if PairReview.objects.filter(candidate=locked).exists():
            raise ModerationError("Already reviewed: this pair has a recorded verdict.")
        if locked.claimed_by_id != user.pk:
            raise ModerationError("This pair is not claimed by you; take it with “Claim next pair”.")
        review = PairReview.objects.create(candidate=locked, reviewer=user, verdict=verdict, note=note)
        locked.lease_expires_at = None
        locked.save(update_fields=["lease_expires_at", "updated_at"])
        if verdict == ReproCandidate.Label.REPRODUCTION:
            cluster_union(video_ids=[locked.video_id, locked.original_id])
        _audit(user, "repro_pair_verdict", locked, {"verdict": verdict})
    return review


def pair_release(*, candidate: ReproCandidate, user: User) -> None:
    with transaction.atomic():
        locked = ReproCandidate.objects.select_for_update().get(pk=candidate.pk)
        if locked.claimed_by_id == user.pk and not PairReview.objects.filter(candidate=locked).exists():
            locked.claimed_by, locked.claimed_at, locked.lease_expires_at = None, None, None
            locked.save(update_fields=["claimed_by", "claimed_at", "lease_expires_at", "updated_at"])
            _audit(user, "repro_pair_release", locked, {})


def _audit(user: User, action: str, candidate: ReproCandidate, payload: dict[str, Any]) -> None:
    from moderation.review.services import audit_event_record

    audit_event_record(actor=user, action=action, obj=candidate, payload=payload)


# --- clusters -------------------------------------------------------------------------------------------


def cluster_union(*, video_ids: list[int]) -> str:
    """Put these videos (and everything already clustered with any of them) into one cluster.

    Union-find over confirmed reproductions, kept materialised: the merged cluster's key is
    ``repro-<smallest member id>``. Serialised by an advisory lock, so concurrent verdicts that
    touch the same clusters cannot split them.
    """
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('repro-clusters', 0))")
        keys = set(ClusterMembership.objects.filter(video_id__in=video_ids).values_list("cluster_key", flat=True))
        members = set(video_ids) | set(
            ClusterMembership.objects.filter(cluster_key__in=keys).values_list("video_id", flat=True)
        )
        key = f"repro-{min(members)}"
        ClusterMembership.objects.filter(video_id__in=members).update(cluster_key=key, updated_at=timezone.now())
        have = set(ClusterMembership.objects.filter(video_id__in=members).values_list("video_id", flat=True))
        ClusterMembership.objects.bulk_create(
            ClusterMembership(video_id=v, cluster_key=key) for v in sorted(members - have)
        )
    return key


def clusters_rebuild() -> int:
    """Recompute every cluster from the confirmed reproductions (union-find); returns the number of clusters."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = ReproCandidate.objects.filter(review__verdict=ReproCandidate.Label.REPRODUCTION).values_list(
        "video_id", "original_id"
    )
    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for v in list(parent):
        groups[find(v)].append(v)
    with transaction.atomic():
        ClusterMembership.objects.all().delete()
        ClusterMembership.objects.bulk_create(
            ClusterMembership(video_id=v, cluster_key=f"repro-{root}") for root, vs in groups.items() for v in vs
        )
    return len(groups)
