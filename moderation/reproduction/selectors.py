"""Reads of the reproduction wing: index look-ups (PDQ multi-index hashing, see ``pdq_index``; pgvector HNSW), the pair queue,
and the cluster key that dataset splits use."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Case, Count, F, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from moderation.media.models import Video
from moderation.media.selectors import video_open_to_q, videos_all_open_to
from moderation.reproduction import matching, side_connection
from moderation.reproduction.models import ClusterMembership, ReproCandidate
from workbench.filters import ALL, ListFilter
from workbench.pagination import CappedCount, capped_count

if TYPE_CHECKING:
    from moderation.reproduction.pdq_index import TableMark

logger = logging.getLogger(__name__)

# Pairs at or above this score wait in the pair queue until someone gives a verdict.
PAIR_QUEUE_THRESHOLD = 0.3


@dataclass(frozen=True)
class HashHit:
    video_id: int
    t: float  # the indexed video's second
    query_t: float  # the query video's second
    mirrored: bool  # matched through the query frame's flipped hash
    distance: int


def hash_hits(
    *, queries: Sequence[tuple[float, str, bool]], exclude_video_id: int | None = None,
    threshold: int = matching.DEFAULT_THRESHOLD, limit: int = 5000, mark: TableMark | None = None,
    per_hash: int = 0,
) -> list[HashHit]:  # fmt: skip
    """Indexed seconds within ``threshold`` bits of any query ``(t, hex hash, mirrored)``, closest first.

    Exact (nothing within ``threshold`` is missed; see ``hamming``): this process's copy of the index
    catches up with PostgreSQL and finds the rows, and one primary-key query confirms them — the row
    still exists (a re-indexed video's old rows do not) and its video is ready. ``mark``: the table's mark
    from ``hash_queries_marked`` (else the catch-up reads it).

    ``per_hash``: where more than that many videos hold the very hash value a query hash matched (reposts of one
    video share their hashes exactly), only the ``per_hash`` earliest of them that PostgreSQL confirms (by video id;
    every row of each) — a repost of a 1,000-video farm confirms and ranks 8,000 rows otherwise, and retrieval keeps
    30 candidates. Confirmed tier by tier (``pdq_index.search``'s ``tier``): a group whose earliest videos are gone
    (deleted, unready: still in this process's copy) is filled from the next ones. 0: every hit.
    """
    from moderation.reproduction import pdq_index

    queries = [q for q in queries if q[1]]
    if not queries:
        return []
    hashes = [h for _t, h, _m in queries]
    raw = pdq_index.search(hashes, threshold=threshold, exclude_video_id=exclude_video_id, mark=mark, per_hash=per_hash)
    if per_hash <= 0 or not any(r.group >= 0 for r in raw):  # nothing cut
        return confirm_hash_hits(queries=queries, raw=raw, limit=limit)
    hits: list[HashHit] = []
    kept: dict[int, set[int]] = defaultdict(set)  # per group: the confirmed videos
    tier = 0
    while raw:
        rows = _confirmed_rows({r.frame_hash_id for r in raw})
        for r in raw:
            row = rows.get(r.frame_hash_id)
            if row is None:
                continue
            videos = kept[r.group]
            if row[0] not in videos and len(videos) >= per_hash:
                continue
            videos.add(row[0])
            qt, _h, mirrored = queries[r.query]
            hits.append(HashHit(int(row[0]), float(row[1]), float(qt), bool(mirrored), r.distance))
        short = {r.group for r in raw if r.more and len(kept[r.group]) < per_hash}
        if not short:
            break
        tier += 1
        raw = [
            r
            for r in pdq_index.search(
                hashes, threshold=threshold, exclude_video_id=exclude_video_id, mark=mark, per_hash=per_hash,
                tier=tier,
            )
            if r.group in short
        ]  # fmt: skip
    hits.sort(key=lambda h: h.distance)  # closest first (stable: each tier's order within a distance)
    return hits[:limit]


def _confirmed_rows(ids: set[int]) -> dict[int, tuple[int, float]]:
    """Of these ``FrameHash`` ids, those PostgreSQL still holds for a ready video: id → (video id, second)."""
    with connection.cursor() as cur:  # plain SQL: the ORM's query building cost more than the query
        cur.execute(
            "SELECT f.id, f.video_id, f.t FROM moderation_framehash f JOIN moderation_video v ON v.id = f.video_id"
            " WHERE f.id = ANY(%s::bigint[]) AND v.status = %s",
            [sorted(ids), Video.Status.READY.value],
        )
        return {pk: (video_id, t) for pk, video_id, t in cur.fetchall()}


def confirm_hash_hits(
    *, queries: Sequence[tuple[float, str, bool]], raw: Sequence[Any], limit: int = 5000
) -> list[HashHit]:
    """``pdq_index.search``'s rows (for ``queries``, blank hashes left out) that PostgreSQL still holds for a
    ready video, as hits: one primary-key query per ``limit`` rows, closest first."""
    hits: list[HashHit] = []
    for start in range(0, len(raw), limit):  # closest first: confirm batches until ``limit`` hits stand
        batch = raw[start : start + limit]
        rows = _confirmed_rows({int(r.frame_hash_id) for r in batch})
        for r in batch:
            row = rows.get(r.frame_hash_id)
            if row is None:
                continue
            qt, _h, mirrored = queries[r.query]
            hits.append(HashHit(int(row[0]), float(row[1]), float(qt), bool(mirrored), r.distance))
        if len(hits) >= limit:
            break
    return hits[:limit]


# One statement for all of a video's embedding neighbours; its parts, joined by UNION ALL, each an HNSW scan (cosine),
# the query vectors read in the statement (never shipped to Python and back). The picture and transcript scans walk
# the distinct vectors (``PictureVector``, ``TranscriptVector``: reposts share one graph element, so a clique of equal
# copies cannot hide a copy's source), two more than asked (the video's own vector, one no video holds any more), and
# reach each vector's videos by its exact key (B-tree), the video itself left out, earliest uploads first (at most
# ``k`` per vector); one template, filled in for each channel. The video embedding's ``kv`` nearest other videos:
_DISTINCT_VECTOR_PART = """
SELECT '{tag}', NULL::float8, n.id, NULL::float8, n.sim FROM moderation_video q CROSS JOIN LATERAL (
    SELECT o.id, d.sim FROM (
        SELECT key, 1 - (embedding <=> q.{column}) AS sim FROM {vectors}
        ORDER BY embedding <=> q.{column} LIMIT {{{k}}} + 2
    ) d CROSS JOIN LATERAL (
        SELECT id FROM moderation_video WHERE {key} = d.key AND id <> {{v}} ORDER BY id LIMIT {{{k}}}
    ) o ORDER BY d.sim DESC, o.id LIMIT {{{k}}}
) n WHERE q.id = {{v}} AND q.{column} IS NOT NULL
"""
_VIDEO_PART = _DISTINCT_VECTOR_PART.format(
    tag="v", column="visual_embedding", vectors="moderation_picturevector", key="visual_key", k="kv"
)
# Per keyframe (the channel before the video embedding; ``REPRO_FRAME_NEIGHBOURS`` = keyframes): its query keyframes
# (at most ``m``, spread evenly over its keyframes in index order, as ``services._spread`` would pick them) each with
# its ``kf`` nearest keyframes of other videos: ``m`` scans of every keyframe row.
_KEYFRAMES_PART = """
SELECT 'f', q.t, n.video_id, n.t, n.sim FROM (
    SELECT t, embedding FROM (
        SELECT "timestamp" AS t, embedding, row_number() OVER (ORDER BY index) - 1 AS i, count(*) OVER () AS n
        FROM moderation_keyframe WHERE video_id = {v} AND embedding IS NOT NULL
    ) own WHERE n <= {m} OR i IN (SELECT round(j * (n - 1)::float8 / ({m} - 1)) FROM generate_series(0, {m} - 1) j)
) q CROSS JOIN LATERAL (
    SELECT video_id, "timestamp" AS t, 1 - (embedding <=> q.embedding) AS sim FROM moderation_keyframe
    WHERE embedding IS NOT NULL AND video_id <> {v} ORDER BY embedding <=> q.embedding LIMIT {kf}
) n
"""
# The transcript's ``kt`` nearest other transcripts (the same way, through ``TranscriptVector``):
_TEXT_PART = _DISTINCT_VECTOR_PART.format(
    tag="t", column="text_embedding", vectors="moderation_transcriptvector", key="text_key", k="kt"
)
_SETTINGS = "SELECT set_config('hnsw.ef_search', '{ef}', true), set_config('hnsw.iterative_scan', '{iterative}', true);"
# pgvector's ``hnsw.iterative_scan`` for the scans of the distinct vectors (``REPRO_HNSW_ITERATIVE_SCAN``). Those
# walks filter nothing (each asks for its k + 2 nearest vectors; the video itself is left out afterwards, by key),
# so a second pass is never needed; but with the iterative scan on, pgvector keeps every element a walk visits and
# rejects (it fully loads it and queues it for a later pass) where without it a rejected element costs its distance
# only. "off" returns at most ``hnsw.ef_search`` rows, so the statement then asks for at least the k + 2 it reads.
# The per-keyframe scan (``_KEYFRAMES_PART``) filters the query video inside the walk: always "relaxed_order".
ITERATIVE_SCANS = ("relaxed_order", "off")
# Which picture neighbours: the video embedding (one scan), the keyframes (one scan per query keyframe), or both.
FRAME_CHANNELS = ("video", "keyframes", "both")


@dataclass(frozen=True)
class Neighbours:
    """A video's embedding neighbours (HNSW, cosine), its own frames and transcript left out."""

    frames: list[tuple[int, float, float, float]]  # (video_id, t, query_t, similarity): per query second, best first
    text: list[tuple[int, float]]  # (video_id, similarity), best first
    videos: list[tuple[int, float]]  # (video_id, similarity) by video embedding, best first


def video_neighbours(
    *, video_id: int, frame_queries: int = 8, k_frames: int = 20, k_text: int = 10, k_videos: int = 20,
    channel: str | None = None,
) -> Neighbours:  # fmt: skip
    """The picture neighbours of ``video_id`` — by its video embedding (the nearest other videos' embeddings), by its
    keyframes (at most ``frame_queries`` of them, spread evenly, each with its nearest keyframes of other videos), or
    both: ``channel``, default ``settings.REPRO_FRAME_NEIGHBOURS`` — and the nearest other transcripts to its own.
    ``video_neighbours_send`` then ``.result()``: see there."""
    return video_neighbours_send(
        video_id=video_id, frame_queries=frame_queries, k_frames=k_frames, k_text=k_text, k_videos=k_videos,
        channel=channel,
    ).result()  # fmt: skip


class PendingNeighbours:
    """``video_neighbours``' scans, sent (on side connections) or still to run (here): ``result`` waits or runs."""

    def __init__(
        self, sql: Callable[[str], str], sent: dict[str, side_connection.Pending | None], video_id: int
    ) -> None:
        self._sql, self._sent, self._video_id = sql, sent, video_id

    def result(self) -> Neighbours:
        rows: list[tuple[Any, ...]] = []
        local = [part for part, pending in self._sent.items() if pending is None]
        if local:  # what could not be sent runs here, in one statement
            rows += _neighbour_rows(self._sql("all" if len(local) == len(self._sent) else local[0]))
        for part, pending in self._sent.items():
            if pending is None:
                continue
            try:
                rows += [
                    (kind, None if qt is None else float(qt), int(v or 0), None if t is None else float(t),
                     float(sim or 0))
                    for kind, qt, v, t, sim in pending.rows()
                ]  # fmt: skip
            except side_connection.SideConnectionError as exc:
                logger.warning(
                    "%s neighbours of video %s on a side connection failed (%s): run here", part, self._video_id, exc
                )
                rows += _neighbour_rows(self._sql(part))
        frames = sorted(
            ((int(v), float(t), float(qt), float(sim)) for kind, qt, v, t, sim in rows if kind == "f"),
            key=lambda r: (r[2], -r[3]),
        )
        text = sorted(((int(v), float(sim)) for kind, _qt, v, _t, sim in rows if kind == "t"), key=lambda r: -r[1])
        videos = sorted(((int(v), float(sim)) for kind, _qt, v, _t, sim in rows if kind == "v"), key=lambda r: -r[1])
        return Neighbours(frames=frames, text=text, videos=videos)

    def discard(self) -> None:
        """Wait out whatever was sent and drop it (when the caller gave up)."""
        for pending in self._sent.values():
            if pending is not None:
                pending.discard()


def video_neighbours_send(
    *, video_id: int, frame_queries: int = 8, k_frames: int = 20, k_text: int = 10, k_videos: int = 20,
    channel: str | None = None,
) -> PendingNeighbours:  # fmt: skip
    """Start ``video_neighbours``: outside a transaction (``side_connection.enabled``: the retrieval task) the
    picture scan and the transcript scan are sent at once, each on its own side connection, so two backends scan
    while this connection does other work (``candidates_retrieve``: the PDQ look-up); ``result`` reads them.
    Inside one (or where a side connection fails) ``result`` runs what was not sent here, in one statement (see
    ``_VIDEO_PART``). Each statement is one round trip: the HNSW settings and the statement go as one simple query
    (no parameters: integers only, formatted in), which PostgreSQL runs as one transaction, so the settings end with
    it (inside a caller's transaction they last to its end).
    """

    def sql(parts: str) -> str:
        return video_neighbours_sql(
            video_id=video_id, frame_queries=frame_queries, k_frames=k_frames, k_text=k_text, k_videos=k_videos,
            channel=channel, parts=parts,
        )  # fmt: skip

    if (channel or settings.REPRO_FRAME_NEIGHBOURS) in {"keyframes", "both"}:
        _warn_without_keyframe_index(channel or settings.REPRO_FRAME_NEIGHBOURS)

    def send(part: str) -> side_connection.Pending | None:
        if not side_connection.prepares():
            return side_connection.send(sql(part), slot=part)
        # Prepared once per side connection, the video a parameter: no parsing and planning per retrieval on the
        # walking backends, which at 200k videos share the 2 cores with this process (bench/RESULTS.md, hrepro22).
        session, statement = video_neighbours_statement(
            frame_queries=frame_queries, k_frames=k_frames, k_text=k_text, k_videos=k_videos, channel=channel,
            parts=part,
        )  # fmt: skip
        return side_connection.send(statement, slot=part, params=[int(video_id)], session=session)

    sent = {"text": send("text")}
    sent["picture"] = send("picture") if sent["text"] else None
    return PendingNeighbours(sql, sent, video_id)


def _neighbour_rows(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute(sql)
        cur.nextset()  # past the settings' row
        return list(cur.fetchall())


def video_neighbours_sql(
    *, video_id: int, frame_queries: int = 8, k_frames: int = 20, k_text: int = 10, k_videos: int = 20,
    channel: str | None = None, parts: str = "all",
) -> str:  # fmt: skip
    """The settings and the statement ``video_neighbours`` sends (integers only, formatted in): with ``parts``
    "all" the picture scans and the transcript scan, "picture" or "text" only those."""
    ef, iterative, template, values = _neighbours_template(
        frame_queries=frame_queries, k_frames=k_frames, k_text=k_text, k_videos=k_videos, channel=channel, parts=parts
    )
    return (_SETTINGS + template).format(ef=ef, iterative=iterative, v=int(video_id), **values)


def video_neighbours_statement(
    *, frame_queries: int = 8, k_frames: int = 20, k_text: int = 10, k_videos: int = 20, channel: str | None = None,
    parts: str = "all",
) -> tuple[str, str]:  # fmt: skip
    """``video_neighbours_sql`` as a statement to prepare: ``(session, statement)``, the HNSW settings as session
    settings of the connection that runs it (``side_connection.send``'s ``session``) and the statement with the video
    id as its parameter ``$1`` (the same rows for the same settings)."""
    ef, iterative, template, values = _neighbours_template(
        frame_queries=frame_queries, k_frames=k_frames, k_text=k_text, k_videos=k_videos, channel=channel, parts=parts
    )
    session = _SETTINGS.replace(", true)", ", false)").format(ef=ef, iterative=iterative).rstrip(";")
    return session, template.format(v="$1", **values)


def _neighbours_template(
    *, frame_queries: int, k_frames: int, k_text: int, k_videos: int, channel: str | None, parts: str
) -> tuple[int, str, str, dict[str, int]]:
    """The HNSW settings and the neighbours statement's template (the video id still ``{v}``) with its integers."""
    channel = channel or settings.REPRO_FRAME_NEIGHBOURS
    if channel not in FRAME_CHANNELS:
        raise ValueError(f"REPRO_FRAME_NEIGHBOURS must be one of {', '.join(FRAME_CHANNELS)}, not {channel!r}")
    if parts not in {"all", "picture", "text"}:
        raise ValueError(f"parts must be all, picture or text, not {parts!r}")
    picture = ([_VIDEO_PART] if channel in {"video", "both"} else []) + (
        [_KEYFRAMES_PART] if channel in {"keyframes", "both"} else []
    )
    iterative = settings.REPRO_HNSW_ITERATIVE_SCAN
    if iterative not in ITERATIVE_SCANS:
        raise ValueError(f"REPRO_HNSW_ITERATIVE_SCAN must be one of {', '.join(ITERATIVE_SCANS)}, not {iterative!r}")
    chosen = {"all": [*picture, _TEXT_PART], "picture": picture, "text": [_TEXT_PART]}[parts]
    kt, kv = max(1, int(k_text)), max(1, int(k_videos))
    ef = max(1, int(settings.REPRO_HNSW_EF_SEARCH))
    if _KEYFRAMES_PART in chosen:
        iterative = "relaxed_order"
    elif iterative == "off":  # one pass returns at most ef_search vectors: at least the k + 2 each scan reads
        ef = max(ef, *(k + 2 for part, k in ((_VIDEO_PART, kv), (_TEXT_PART, kt)) if part in chosen))
    values = {"m": max(2, int(frame_queries)), "kf": max(1, int(k_frames)), "kt": kt, "kv": kv}
    return ef, iterative, "\nUNION ALL\n".join(chosen), values


def keyframe_index_exists() -> bool:
    """Whether the per-keyframe HNSW index (``services.KEYFRAME_INDEX``, built on demand) is there and valid."""
    with connection.cursor() as cur:
        cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('keyframe_embedding_hnsw')")
        row = cur.fetchone()
    return bool(row and row[0])


_WARNED_NO_KEYFRAME_INDEX: set[tuple[str, str]] = set()


def _warn_without_keyframe_index(channel: str) -> None:
    """Once per process and database: the keyframe channel without its index scans every keyframe row."""
    key = (str(connection.settings_dict.get("HOST") or ""), str(connection.settings_dict.get("NAME") or ""))
    if key in _WARNED_NO_KEYFRAME_INDEX:
        return
    _WARNED_NO_KEYFRAME_INDEX.add(key)
    if not keyframe_index_exists():
        logger.warning(
            "REPRO_FRAME_NEIGHBOURS=%s reads keyframe neighbours, but the per-keyframe HNSW index is not built: each"
            " query keyframe scans every keyframe row (exact, slow). Build it: manage.py repro_keyframe_index create",
            channel,
        )


def hash_queries_of(video_id: int) -> list[tuple[float, str, bool]]:
    """A video's indexed seconds as PDQ look-ups ``(t, hex hash, mirrored)``: each usable second's hash and, where
    it has one, its flipped frame's (near-flat seconds, below ``matching.MIN_QUALITY``, are never looked up)."""
    return hash_queries_marked(video_id)[0]


def hash_queries_marked(video_id: int) -> tuple[list[tuple[float, str, bool]], TableMark]:
    """``hash_queries_of`` and, from the same statement, the ``FrameHash`` table's ``pdq_index.TableMark`` (its
    largest id and relation file), which ``hash_hits(mark=...)`` hands to the PDQ copy's catch-up: one round trip
    for both, where they were two (bench/RESULTS.md, issue 20)."""
    from moderation.reproduction import pdq_index

    with connection.cursor() as cur:
        # The mark's one row, joined to the video's hashes (none: one row of NULLs).
        cur.execute(
            f"SELECT f.t, f.hash::text, f.hash_mirror::text, m.* FROM ({pdq_index.MARK_SQL}) m"
            " LEFT JOIN moderation_framehash f ON f.video_id = %s AND f.quality >= %s ORDER BY f.t, f.id",
            [int(video_id), matching.MIN_QUALITY],
        )
        rows = cur.fetchall()
    queries = []
    for t, bits, mirror_bits, _newest, _filenode in rows:
        if bits is None:
            continue
        queries.append((float(t), f"{int(bits, 2):064x}", False))
        if mirror_bits:
            queries.append((float(t), f"{int(mirror_bits, 2):064x}", True))
    return queries, pdq_index.TableMark(int(rows[0][3]), int(rows[0][4] or 0))


# --- the pair queue -----------------------------------------------------------------------------------


def pairs_open_to(*, user: Any, pairs: QuerySet[ReproCandidate]) -> QuerySet[ReproCandidate]:
    """The pairs whose two videos ``user`` may both see (a restricted review queue's content stays with its groups)."""
    return pairs.filter(video_open_to_q(user=user, field="video_id"), video_open_to_q(user=user, field="original_id"))


def pair_queue_pending(*, threshold: float = PAIR_QUEUE_THRESHOLD) -> QuerySet[ReproCandidate]:
    """Pairs waiting for a verdict: score at or above ``threshold``, no review, not under a live claim."""
    now = timezone.now()
    return (
        ReproCandidate.objects.filter(score__gte=threshold, review__isnull=True)
        .filter(Q(claimed_by__isnull=True) | Q(lease_expires_at__lt=now))
        .order_by("-score", "id")
    )


def pairs_reviewed() -> QuerySet[ReproCandidate]:
    """Pairs with a verdict, the most recently decided first."""
    return ReproCandidate.objects.filter(review__isnull=False).order_by("-review__created_at", "-id")


def pairs_touching(*, video: Video) -> QuerySet[ReproCandidate]:
    """Every pair ``video`` is in, as the later upload or the earlier, whoever looks: what the video's pairs screen
    reads its window of rows from (``WindowPaginator``) before the visibility rule."""
    return ReproCandidate.objects.filter(Q(video=video) | Q(original=video))


def _pairs_of_video(*, video: Video, user: Any, likely: bool) -> QuerySet[ReproCandidate]:
    """The pairs ``video`` is in, as the later upload or the earlier, that ``user`` may open (both videos open to
    them): the one home of that rule for the screens that list a video's pairs. ``likely``: only likely re-uploads
    (at or above the pair queue's threshold, and no verdict has called them unrelated); otherwise those someone
    looks at (at or above the threshold, or with a verdict)."""
    pairs = pairs_touching(video=video)
    if likely:
        pairs = pairs.filter(score__gte=PAIR_QUEUE_THRESHOLD).exclude(review__verdict=ReproCandidate.Label.UNRELATED)
    else:
        pairs = pairs.filter(Q(score__gte=PAIR_QUEUE_THRESHOLD) | Q(review__isnull=False))
    return pairs_open_to(user=user, pairs=pairs).select_related("video", "original", "review")


# The video's pairs screen's one filter: every pair, or one side of its likely re-uploads as the review screen's
# re-upload line names and counts them (``video_reupload_pairs``), its "N more" links opening that side.
PAIRS_OF_VIDEO_FILTER = ListFilter(
    param="side",
    noun="list of a video's pairs",
    tabs=((ALL, "All pairs"), ("copies", "Later copies of it"), ("originals", "Earlier videos it copies")),
    default=ALL,
    everything_words="all the video's pairs",
)


def pairs_of_video(*, video: Video, user: Any, side: str = ALL) -> QuerySet[ReproCandidate]:
    """The pairs ``video`` is in that someone looks at (``_pairs_of_video``), the strongest first: the video's pairs
    screen lists them all, page by page; its page the strongest few (``video_pairs_strongest``). The pair screen was
    reachable only from the queue. ``side`` (``PAIRS_OF_VIDEO_FILTER``): "copies", only the likely re-uploads of it
    made later (it is the original); "originals", only the earlier videos it likely re-uploads: each the whole side
    of which the review screen's re-upload line names the strongest few and counts the rest."""
    if side == "copies":
        pairs = _pairs_of_video(video=video, user=user, likely=True).filter(original=video)
    elif side == "originals":
        pairs = _pairs_of_video(video=video, user=user, likely=True).filter(video=video)
    else:
        pairs = _pairs_of_video(video=video, user=user, likely=False)
    return pairs.order_by("-score", "id")


VIDEO_PAGE_PAIRS = 10


@dataclass(frozen=True)
class StrongestPairs:
    """The strongest of a video's pairs (``video_pairs_strongest``) and how many it has in all."""

    pairs: list[ReproCandidate]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.pairs)


def video_pairs_strongest(*, video: Video, user: Any, limit: int = VIDEO_PAGE_PAIRS) -> StrongestPairs:
    """The strongest ``limit`` of ``pairs_of_video`` and how many there are in all, for the video's page (which
    links to the rest on the video's pairs screen), in one query: the count is a window over every pair, taken
    before the limit."""
    pairs: list[Any] = list(pairs_of_video(video=video, user=user).annotate(total=Window(Count("id")))[:limit])
    return StrongestPairs(pairs=pairs, total=pairs[0].total if pairs else 0)


REUPLOAD_LINE_LIMIT = 3


@dataclass(frozen=True)
class ReuploadPairs:
    """What the review screen says of its item's likely re-upload pairs (``video_reupload_pairs``)."""

    originals: list[ReproCandidate]  # the item re-uploads these earlier videos
    copies: list[ReproCandidate]  # later videos re-upload the item
    more_originals: int
    more_copies: int


def video_reupload_pairs(*, video: Video, user: Any, limit: int = REUPLOAD_LINE_LIMIT) -> ReuploadPairs:
    """The likely re-upload pairs of ``video`` that ``user`` may open (``_pairs_of_video``), both ways: those where
    it is the later upload (a re-upload of an earlier video) and those where it is the earlier (later videos
    re-upload it), the strongest ``limit`` of each and how many more. Each side is ranked and counted by a window
    over it, so two queries whatever the number of pairs, and one cheap one for a video with no likely pair (most
    of them): the query that applies the visibility rule to both videos of each pair costs ~20 ms to compile and
    plan, for every review screen, whether or not the video has pairs."""
    near = ReproCandidate.objects.filter(Q(video=video) | Q(original=video), score__gte=PAIR_QUEUE_THRESHOLD)
    if not near.exists():
        return ReuploadPairs(originals=[], copies=[], more_originals=0, more_copies=0)
    copied = Case(When(original_id=video.pk, then=Value(True)), default=Value(False), output_field=BooleanField())
    pairs = (
        _pairs_of_video(video=video, user=user, likely=True)
        .annotate(
            copied=copied,
            side_rank=Window(RowNumber(), partition_by=[copied], order_by=[F("score").desc(), F("id").asc()]),
            on_side=Window(Count("id"), partition_by=[copied]),
        )
        .filter(side_rank__lte=limit)
        .order_by("-score", "id")
    )
    sides: dict[bool, list[Any]] = {False: [], True: []}  # rows carry the annotations (copied, on_side)
    for pair in pairs:
        sides[pair.copied].append(pair)  # type: ignore[attr-defined]
    originals, copies = sides[False], sides[True]
    return ReuploadPairs(
        originals=originals,
        copies=copies,
        more_originals=originals[0].on_side - len(originals) if originals else 0,
        more_copies=copies[0].on_side - len(copies) if copies else 0,
    )


def pair_held_by_other(*, candidate: ReproCandidate, user: Any) -> Any:
    """Who else holds ``candidate`` under a live claim (the lease not yet lapsed), or None: then ``user`` may claim it."""
    lease = candidate.lease_expires_at
    if candidate.claimed_by_id in (None, user.pk) or lease is None or lease < timezone.now():
        return None
    return candidate.claimed_by


def pairs_held_by(*, user: Any, pairs: QuerySet[ReproCandidate] | None = None) -> QuerySet[ReproCandidate]:
    """The pairs ``user`` holds under a live claim and has not decided, that they may still open, first the one
    "Claim next pair" gives back (``services.pair_claim_next`` reads it here, ``pairs`` locked; the pair queue names
    it). A pair with a video hidden from them since is neither given back nor named."""
    pairs = ReproCandidate.objects.all() if pairs is None else pairs
    held = pairs.filter(claimed_by=user, review__isnull=True, lease_expires_at__gte=timezone.now())
    return pairs_open_to(user=user, pairs=held).order_by("-score", "id")


def pair_held_by(*, user: Any) -> ReproCandidate | None:
    """The pair the pair queue says ``user`` holds (``pairs_held_by``), or None."""
    return pairs_held_by(user=user).select_related("video", "original").first()


def pairs_claimed_live() -> QuerySet[ReproCandidate]:
    """Pairs under a live claim, decided or not: read by their lease (index ``repro_candidate_live_lease``, only
    the claims not yet decided, released or lapsed), not by who claimed them (a verdict keeps its claimer)."""
    return ReproCandidate.objects.filter(lease_expires_at__gte=timezone.now())


def pair_queue_stats(
    *, user: Any, threshold: float = PAIR_QUEUE_THRESHOLD, pending: CappedCount | None = None, cap: int | None = None
) -> dict[str, CappedCount]:
    """The pair queue's counts as ``user`` can work it: a pair with a video hidden from them is never handed out to
    them ("Claim next"), so it is not counted as waiting (nor as claimed) either.

    No count reads every pair: the waiting and the reviewed pairs are counted as their lists count them
    (``workbench.pagination.capped_count``: a window of them in the list's order, the rule applied to those rows
    only, exact as far as ``cap``, 1,000, then "1,000+"); the queue passes its page's count of the waiting pairs
    (``pending``), which it has already read. The claimed ones are the live claims (``pairs_claimed_live``: one or a
    few per reviewer at work), counted exactly. Before, three counts applied the rule to every pair."""
    # A reader who sees every video: no rule, each count reads the pair table (and its verdicts) alone.
    filtered = not videos_all_open_to(user=user)
    if pending is None:
        waiting = pair_queue_pending(threshold=threshold)
        pending = capped_count(pairs_open_to(user=user, pairs=waiting), window=waiting, cap=cap, filtered=filtered)
    claimed = pairs_claimed_live().filter(score__gte=threshold, review__isnull=True)
    reviewed = pairs_reviewed()
    return {
        "pending": pending,
        "claimed": CappedCount(pairs_open_to(user=user, pairs=claimed).count()),
        # The count links to the reviewed list, so it counts what that list shows (pairs the user may see).
        "reviewed": capped_count(pairs_open_to(user=user, pairs=reviewed), window=reviewed, cap=cap, filtered=filtered),
    }


def pair_detail(*, candidate: ReproCandidate) -> dict[str, Any]:
    """What the pair screen shows: both videos, their keyframes with the matched ones paired, the model scores."""
    from moderation.media import analyzers
    from moderation.media.models import Keyframe

    copy, original = candidate.video, candidate.original
    alignment = (candidate.evidence or {}).get("alignment") or {}
    matches = alignment.get("matches") or []
    copy_frames = {round(k.timestamp): k for k in Keyframe.objects.filter(video=copy).order_by("index")}
    orig_frames = {round(k.timestamp): k for k in Keyframe.objects.filter(video=original).order_by("index")}
    matched_pairs = []
    for m in matches:
        left, right = copy_frames.get(round(m["t"])), orig_frames.get(round(m["t_orig"]))
        if left is not None and right is not None:
            matched_pairs.append({"copy": left, "original": right, "distance": m.get("d")})
    matched_copy = {round(m["t"]) for m in matches}
    matched_orig = {round(m["t_orig"]) for m in matches}
    return {
        "copy": copy,
        "original": original,
        "alignment": alignment,
        # A mirrored copy's frame similarity is measured with its frames flipped back where the embedding allows
        # it (the offline thumbnail; features.features_from); a CLIP embedding is compared as uploaded.
        "frames_flipped": bool(alignment.get("mirrored"))
        and copy.frame_embedding_model in ("", analyzers.OFFLINE_FRAME_EMBEDDING),
        "matched_pairs": matched_pairs,
        "copy_keyframes": [(k, t in matched_copy) for t, k in sorted(copy_frames.items())],
        "original_keyframes": [(k, t in matched_orig) for t, k in sorted(orig_frames.items())],
        "teacher": candidate.teacher_judgements.order_by("-created_at").first(),
        "copy_transcript": " ".join(copy.segments.order_by("index").values_list("text", flat=True)),
        "original_transcript": " ".join(original.segments.order_by("index").values_list("text", flat=True)),
    }


# --- clusters ----------------------------------------------------------------------------------------


def cluster_key_for(video: Video | int) -> str:
    """The reproduction cluster of a video, for dataset splits: all confirmed reproductions of one
    another share a key, so a split that keeps keys on one side never puts a copy in test and its
    original in train. A video in no confirmed pair is its own cluster (``"video-<id>"``)."""
    video_id = video if isinstance(video, int) else video.pk
    key = ClusterMembership.objects.filter(video_id=video_id).values_list("cluster_key", flat=True).first()
    return key or f"video-{video_id}"


def cluster_members(cluster_key: str) -> list[int]:
    return sorted(ClusterMembership.objects.filter(cluster_key=cluster_key).values_list("video_id", flat=True))
