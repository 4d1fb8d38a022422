"""Labeler reads: which decisions to correct, Tag2CoT candidates and tasks, adjudications."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404

from annotation.models import Adjudication, CotCorrection, Tag2CotTask
from moderation.inference.models import Decision
from moderation.media.models import Video
from moderation.media.selectors import videos_open_to
from workbench.filters import ALL, ListFilter
from workbench.pagination import CappedCount

# The correction list's filters: by the correction's status ("" every decision, "none" not corrected yet), and by
# author ("" everyone's). Unknown values are said, then everything listed.
CORRECTION_STATUS_FILTER = ListFilter(
    param="status",
    noun="correction status",
    tabs=(("", "All"), ("none", "Not corrected"), *CotCorrection.Status.choices),
    default="",
    everything="",
    everything_words="every decision",
)
CORRECTION_AUTHOR_FILTER = ListFilter(
    param="by",
    noun="author filter",
    tabs=(("", "Everyone's"), ("me", "Mine"), ("others", "Other labelers'")),
    default="",
    everything="",
    everything_words="everyone's corrections",
)
# A word (Latin letters and digits), a run of spaces, or one other character (each CJK character is a word).
_DIFF_TOKENS = re.compile(r"\s+|\w+|.", re.ASCII | re.DOTALL)
_CONTEXT = 60  # characters of unchanged text kept on each side of a change
_JOIN_BELOW_WORDS = 3  # unchanged text of fewer words between two changes is shown as part of one change

_Row = TypeVar("_Row", bound=Model)


def _open_to(user: Any, qs: QuerySet[_Row]) -> QuerySet[_Row]:
    """With a ``user`` (the screens pass theirs): only rows about videos they may see, the rule of
    ``videos_open_to`` (a restricted review queue's content stays with its groups). None: every row (tasks, commands)."""
    return qs if user is None else videos_open_to(user=user, qs=qs, field="video_id")


def correction_candidates(*, status: str = "", user: Any = None, by: str = "") -> QuerySet[Decision]:
    """Decisions a labeler can correct, latest first, with video and any correction joined.

    ``status`` filters by the correction's status; ``"none"`` keeps decisions not corrected yet.
    ``by``: ``"me"`` keeps corrections ``user`` wrote, ``"others"`` those someone else wrote (what the
    home screen counts as the labeler's drafts and as waiting for them to review).
    """
    qs = (
        Decision.objects.exclude(cot=[])
        .select_related("video", "policy_version", "model_version", "correction__author", "correction__reviewed_by")
        .order_by("-created_at", "-pk")
    )
    if status == "none":
        qs = qs.filter(correction__isnull=True)
    elif status in CotCorrection.Status.values:
        qs = qs.filter(correction__status=status)
    if by == "me" and user is not None:
        qs = qs.filter(correction__author=user)
    elif by == "others" and user is not None:
        qs = qs.filter(correction__isnull=False).exclude(correction__author=user)
    return _open_to(user, qs)


def correction_next_uncorrected(*, user: Any, after: Decision) -> Decision | None:
    """The decision to correct after ``after``: the next one down the "Not corrected" list (latest first), else the
    latest one above it; ``None`` when every decision open to ``user`` has a correction."""
    todo = correction_candidates(status="none", user=user).exclude(pk=after.pk)
    below = Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk)
    return todo.filter(below).first() or todo.first()


def correction_next_to_review(*, user: Any, after: Decision) -> Decision | None:
    """The submitted correction ``user`` may review after ``after`` (someone else's, latest first, as the list's
    "waiting for a second labeler" filter orders them): the next one down, else the latest one above it."""
    todo = correction_candidates(status=CotCorrection.Status.SUBMITTED, user=user, by="others").exclude(pk=after.pk)
    below = Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk)
    return todo.filter(below).first() or todo.first()


def decision_for_correction(*, decision_id: int, user: Any = None) -> Decision:
    return get_object_or_404(
        _open_to(user, Decision.objects.all())
        .select_related(
            "video", "policy_version__policy", "model_version", "correction__author", "correction__reviewed_by"
        )
        .prefetch_related("video__segments", "video__keyframes__patches"),
        pk=decision_id,
    )


# --- Tag2CoT ------------------------------------------------------------------------------------

# Which human label counts when a video has several: an adjudication settles a dispute, a review
# override is a deliberate correction of the model, then any review, then imported ground truth.
LABEL_SOURCE_ORDER = ("adjudication", "override", "review", "import")

# The items due a Tag2CoT task, one row a video in id order: ``video_id, decision_id, policy_version_id, label,
# source``. Each labelled video's human label (the first non-empty one in ``LABEL_SOURCE_ORDER``; of the overrides the
# latest), its latest decision (looked up by its video, a few index pages), and the checks that rule it out: a
# task for that decision and label already, a label its policy version does not know (the safe label or a tag key of
# its taxonomy: each version's labels listed once, ``known``; tested on each row, the taxonomy was read again per
# row, 100 of 134 ms at 2,000 labelled videos), an accepted correction, or the model reaching the label without a
# parse error. One statement: the press read every label and override and every labelled video's decisions into
# Python to find the few due.
_TAG2COT_DUE_SQL = """
WITH labelled AS (
    SELECT DISTINCT ON (video_id) video_id, label, source
    FROM (
        SELECT l.video_id, l.label, l.source,
               CASE l.source WHEN 'adjudication' THEN 0 WHEN 'review' THEN 2 ELSE 3 END AS rank
        FROM moderation_itemlabel l
        UNION ALL
        SELECT latest.video_id, latest.label, 'override', 1
        FROM (
            SELECT DISTINCT ON (d.video_id) d.video_id, r.label
            FROM moderation_review r JOIN moderation_decision d ON d.id = r.decision_id
            WHERE r.verdict = 'override'
            ORDER BY d.video_id, r.created_at DESC, r.id DESC
        ) latest
    ) found
    WHERE label <> ''
    ORDER BY video_id, rank
),
known AS MATERIALIZED (
    SELECT pv.id AS policy_version_id, pv.safe_label AS label FROM moderation_policyversion pv
    UNION
    SELECT pv.id, tag ->> 'key'
    FROM moderation_policyversion pv
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(pv.taxonomy) WHEN 'array' THEN pv.taxonomy ELSE '[]' END
    ) major
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(major -> 'tags') WHEN 'array' THEN major -> 'tags' ELSE '[]' END
    ) tag
)
SELECT h.video_id, d.id AS decision_id, d.policy_version_id, h.label, h.source
FROM labelled h
CROSS JOIN LATERAL (
    SELECT id, policy_version_id, label, parse_error FROM moderation_decision
    WHERE video_id = h.video_id ORDER BY created_at DESC, id DESC LIMIT 1
) d
WHERE NOT EXISTS (
        SELECT 1 FROM annotation_tag2cottask t WHERE t.decision_id = d.id AND t.target_label = h.label
    )
    AND EXISTS (SELECT 1 FROM known k WHERE k.policy_version_id = d.policy_version_id AND k.label = h.label)
    AND NOT EXISTS (
        SELECT 1 FROM annotation_cotcorrection c WHERE c.decision_id = d.id AND c.status = 'accepted'
    )
    AND NOT (d.label = h.label AND d.parse_error = '')
ORDER BY h.video_id
"""


def tag2cot_due_sql() -> str:
    """The items with a human label but no acceptable CoT, and no Tag2CoT task yet for that label, as SQL
    (``_TAG2COT_DUE_SQL``, no parameters): what ``tag2cot_tasks_queue`` inserts from and counts, and
    ``tag2cot_due_count`` counts. The CoT is the video's latest decision's; it is acceptable when it has an
    accepted correction, or when the model reached the human label without a parse error."""
    return _TAG2COT_DUE_SQL


# How far a press counts the items it leaves due a task ("1,000+ more"): past it the count would grow with the
# labelled history, where the press itself stops at its bound.
TAG2COT_DUE_CAP = 1000


def tag2cot_due_count(*, user: Any = None, cap: int = TAG2COT_DUE_CAP) -> CappedCount:
    """How many items are due a Tag2CoT task (``tag2cot_due_sql``), counted as far as ``cap``; with a ``user``,
    only those on videos they may see (``videos_open_to``: a restricted queue's content stays with its groups).
    The press counts the items it leaves in its own statement (``annotation.services._TAG2COT_PRESS_SQL``)."""
    due = RawSQL(f"SELECT video_id FROM ({_TAG2COT_DUE_SQL}) due", ())  # noqa: S611  (ours, no parameters)
    videos = Video.objects.filter(pk__in=due)
    if user is not None:
        videos = videos_open_to(user=user, qs=videos)
    n = videos.order_by()[: cap + 1].count()
    return CappedCount(min(n, cap), n <= cap)


def tag2cot_drafts_waiting() -> int:
    """Open tasks whose model draft is still queued or running: a baseline draft is written when the task is
    opened, and a model draft, once done or failed, sets ``draft_source`` or ``draft_error``. A task written
    by hand before its draft came is done, and no longer counted."""
    return Tag2CotTask.objects.filter(
        status=Tag2CotTask.Status.OPEN, draft_source=Tag2CotTask.DraftSource.NONE, draft_error=""
    ).count()


# The list's filter as its tabs show it: each status, then every task (an unknown ``?status=`` is said, then all).
TAG2COT_FILTER = ListFilter(
    param="status",
    noun="Tag2CoT status",
    tabs=(*Tag2CotTask.Status.choices, (ALL, "All")),
    default=Tag2CotTask.Status.OPEN,
    everything_words="every task",
)


def tag2cot_tasks(*, status: str = Tag2CotTask.Status.OPEN, user: Any = None) -> QuerySet[Tag2CotTask]:
    """Tasks of ``status`` (one of the model's statuses; anything else, e.g. ``ALL``: every task)."""
    # The policy version: the list names each label in its taxonomy's words (``label_name``), one join, not a query a row.
    qs = Tag2CotTask.objects.select_related("video", "decision", "policy_version", "assigned_to", "author")
    if status in Tag2CotTask.Status.values:
        qs = qs.filter(status=status)
    return _open_to(user, qs).order_by("created_at", "pk")


def tag2cot_task_get(*, task_id: int, user: Any = None) -> Tag2CotTask:
    return get_object_or_404(
        _open_to(user, Tag2CotTask.objects.all())
        .select_related("video", "decision__model_version", "policy_version__policy", "assigned_to", "author")
        .prefetch_related("video__segments", "video__keyframes__patches"),
        pk=task_id,
    )


# --- adjudication -----------------------------------------------------------------------------


# The adjudication list's filter: each status, then every adjudication (an unknown ``?status=`` is said, then all).
ADJUDICATION_FILTER = ListFilter(
    param="status",
    noun="adjudication status",
    tabs=(*Adjudication.Status.choices, (ALL, "All")),
    default=Adjudication.Status.OPEN,
    everything_words="every adjudication",
)


def adjudications(*, status: str = Adjudication.Status.OPEN, user: Any = None) -> QuerySet[Adjudication]:
    """Adjudications of ``status`` (one of the model's statuses; anything else, e.g. ``ALL``: every one)."""
    qs = Adjudication.objects.select_related("video", "decision__policy_version", "decided_by")
    if status in Adjudication.Status.values:
        qs = qs.filter(status=status)
    return _open_to(user, qs).order_by("created_at", "pk")


def adjudication_get(*, adjudication_id: int, user: Any = None) -> Adjudication:
    return get_object_or_404(
        _open_to(user, Adjudication.objects.all())
        .select_related("video", "decision__policy_version__policy", "decision__model_version", "decided_by", "rule")
        .prefetch_related("video__segments", "video__keyframes__patches"),
        pk=adjudication_id,
    )


def correction_diff_for_review(*, correction: CotCorrection) -> list[dict[str, Any]]:
    """Each changed stage as runs of kept, removed and added words, for the second labeler.

    The stage was shown whole, struck out, then whole again: a sentence added to a paragraph of 700
    characters had to be found by reading both. Unchanged text longer than two contexts keeps
    ``_CONTEXT`` characters on each side of a change and an ellipsis between; a space, or fewer than
    ``_JOIN_BELOW_WORDS`` words, kept between two changes joins them (a rewritten sentence reads as one removal
    and one addition).
    """
    rows = []
    for change in correction.diff:
        before = _DIFF_TOKENS.findall(change.get("before") or "")
        after = _DIFF_TOKENS.findall(change.get("after") or "")
        opcodes = SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
        pieces: list[tuple[str, str, str]] = []  # (kept, removed, added): kept text or one change
        for n, (op, i1, i2, j1, j2) in enumerate(opcodes):
            kept = "".join(before[i1:i2]) if op == "equal" else ""
            # Between two changes, a space or a word or two that happen to match ("the", "0.", "):") joins them:
            # a rewritten sentence read as alternating shreds ("confidence 0a loan … number.75.").
            joins = kept.isspace() or _words(before[i1:i2]) < _JOIN_BELOW_WORDS
            if op == "equal" and not (joins and 0 < n < len(opcodes) - 1):
                pieces.append((kept, "", ""))
            elif pieces and not pieces[-1][0]:  # continues the change before it
                removed, added = pieces.pop()[1:]
                pieces.append(("", removed + "".join(before[i1:i2]), added + "".join(after[j1:j2])))
            else:
                pieces.append(("", "".join(before[i1:i2]), "".join(after[j1:j2])))
        runs: list[dict[str, str]] = []
        for n, (kept, removed, added) in enumerate(pieces):
            if kept:
                runs.append({"kind": "same", "text": _elide(kept, first=n == 0, last=n == len(pieces) - 1)})
            if removed:
                runs.append({"kind": "del", "text": removed})
            if added:
                runs.append({"kind": "ins", "text": added})
        rows.append({"title": change.get("title") or change.get("key", ""), "runs": runs})
    return rows


def _words(tokens: list[str]) -> int:
    """How many words ``tokens`` hold: runs of letters or digits, each CJK character one (ASCII ``\\w`` leaves them
    one token each), not spaces or punctuation."""
    return sum(1 for tok in tokens if not tok.isspace() and (len(tok) > 1 or tok.isalnum()))


def _elide(text: str, *, first: bool, last: bool) -> str:
    """Unchanged text cut to the context around the changes next to it (none before the first change,
    none after the last)."""
    head = "" if first else text[:_CONTEXT]
    tail = "" if last else text[-_CONTEXT:]
    if len(text) <= len(head) + len(tail) + 3:
        return text
    return f"{head} … {tail}".strip() if head or tail else "…"
