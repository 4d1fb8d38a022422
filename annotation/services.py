"""Labeler writes: corrections of a model decision's chain-of-thought."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from annotation.errors import AnnotationError, CorrectionConflict, StageRefused
from annotation.models import Adjudication, CotCorrection, DisagreementRule, Tag2CotTask
from annotation.selectors import TAG2COT_DUE_CAP, tag2cot_drafts_waiting, tag2cot_due_sql
from moderation.errors import ModerationError
from moderation.feedback.models import FeedbackAggregate
from moderation.feedback.selectors import feedback_stats_from
from moderation.inference.backends import STAGES, get_backend
from moderation.inference.cot import BLM_THINK_STAGES
from moderation.inference.models import Decision
from moderation.inference.services import content_bundle_for, model_version_serving
from moderation.integrations.services import event_label_final
from moderation.labels.models import ItemLabel
from moderation.media.models import Video
from moderation.media.selectors import videos_all_open_to, videos_open_to
from moderation.review.services import audit_event_record, review_note_checked
from workbench.pagination import CappedCount
from workbench.queues import enqueue

# The most one CoT stage a labeler writes may hold: a few paragraphs of reasoning are a few thousand
# characters; megabytes pasted into a stage would go into every training prompt built from it.
COT_STAGE_MAX_CHARS = 8000


def _check_length(text: str, title: str, *, stage: str | None = None) -> str:
    """Refuses a stage over ``COT_STAGE_MAX_CHARS``; with ``stage`` (its key), as a ``StageRefused`` the
    screen says on that stage."""
    if len(text) > COT_STAGE_MAX_CHARS:
        message = (
            f"Stage “{title}” is {len(text):,} characters long; a stage may hold at most {COT_STAGE_MAX_CHARS:,}. "
            "Shorten it: quote only what the reasoning needs."
        )
        raise StageRefused(message, stage=stage) if stage else AnnotationError(message)
    return text


def _clean(text: str) -> str:
    # Browsers send textarea line breaks as CRLF; normalise so an untouched stage is not a change.
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _note_checked(text: str, *, what: str) -> str:
    """A reason or note a labeler writes for another (``_clean``), held to a reviewer's note's limit."""
    try:
        return review_note_checked(_clean(text), what=what)
    except ModerationError as exc:
        raise AnnotationError(str(exc)) from exc


@transaction.atomic
def cot_correction_save(
    *,
    decision: Decision,
    author: User,
    stages: dict[str, str],
    label: str,
    base_revision: int,
    submit: bool = True,
) -> CotCorrection:
    """Save a labeler's corrected CoT and label for ``decision`` (optimistic concurrency).

    ``base_revision`` is the revision the labeler's form was loaded from (0 when there was no
    correction yet). If someone saved since, the save is refused with ``CorrectionConflict``
    carrying their correction, so no one silently overwrites another labeler's work.

    Stages keep the decision's structure (key, title, evidence); only the text changes. Stages
    not named in ``stages`` keep the model's text. ``diff`` lists the stages whose text now differs
    from the model's original.

    ``submit`` puts it up for review by another labeler; otherwise it stays a draft. Any save
    clears an earlier acceptance or rejection: the new text has not been reviewed.
    """
    # Lock the decision: it exists even before the first correction does, so it serialises both
    # "first save" and "later save" races.
    locked = Decision.objects.select_for_update().select_related("policy_version").get(pk=decision.pk)
    current = CotCorrection.objects.filter(decision=locked).select_related("author").first()
    current_revision = current.revision if current is not None else 0
    new_stages, diff, status = _correction_content(locked, stages=stages, label=label, submit=submit)
    if current is not None and (current.stages, current.label, current.status) == (new_stages, label, status):
        # The very text already saved: a double click, a form sent again after the back button, or the
        # same text from a second tab. Nothing new, so no new revision and no conflict with oneself.
        current.unchanged = True  # type: ignore[attr-defined]
        return current
    if int(base_revision) != current_revision:
        if current is None:
            raise AnnotationError("This correction changed since you opened it; reload the page and try again.")
        if current.author_id == author.pk:  # the same labeler, from another tab or window: not "their" text
            raise CorrectionConflict(
                f"You saved revision {current.revision} of this correction in another tab or window while this "
                "page was open; that text is shown beside this one. Merge what you need and save again.",
                current=current,
            )
        raise CorrectionConflict(
            f"{current.author} saved revision {current.revision} of this correction while you were editing; "
            "their text is shown beside yours. Merge what you need and save again.",
            current=current,
        )

    if current is None:
        current = CotCorrection.objects.create(
            decision=locked, stages=new_stages, label=label, diff=diff, author=author, revision=1, status=status
        )
    else:
        reopen = current.status == CotCorrection.Status.ACCEPTED  # the revised text is not reviewed yet
        current.stages = new_stages
        current.label = label
        current.diff = diff
        current.author = author
        current.status = status
        current.revision = current_revision + 1
        current.reviewed_by = None
        current.reviewed_at = None
        current.reject_reason = ""
        current.save()
        if reopen:
            _tag2cot_reopen(correction=current, by=author)
    if status == CotCorrection.Status.SUBMITTED:  # drafts are the author's own; a submitted one is on its way to data
        _audit_correction(current, by=author, action="correction.submit")
    return current


def _audit_correction(correction: CotCorrection, *, by: User, action: str, **payload: Any) -> None:
    """A correction submitted, accepted or rejected, in the audit log: an accepted one becomes training data (the
    admin's log showed every review and tag but not who had put which reasoning into a dataset)."""
    audit_event_record(
        actor=by,
        action=action,
        obj=correction,
        payload={
            "decision": correction.decision_id,
            "revision": correction.revision,
            "label": correction.label,
            **payload,
        },
    )


def _correction_content(
    locked: Decision, *, stages: dict[str, str], label: str, submit: bool
) -> tuple[list[dict[str, Any]], list[dict[str, str]], str]:
    """The stages, the diff against the model's text and the status a save would store; refuses what
    cannot be saved (an unknown stage or label, an empty or too long stage) with an ``AnnotationError``."""
    model_stages = correctable_stages(locked)
    known = {s.get("key") for s in model_stages if isinstance(s, dict)}
    unknown = sorted(set(stages) - known)
    if unknown:
        raise AnnotationError(f"Unknown CoT stage(s): {', '.join(unknown)}.")
    names = locked.policy_version.label_names()
    if label not in names:
        raise AnnotationError(f"“{label}” is not a label of policy {locked.policy_version}.")

    new_stages: list[dict[str, Any]] = []
    diff: list[dict[str, str]] = []
    for stage in model_stages:
        if not isinstance(stage, dict):
            continue
        before = stage.get("text", "")
        after = _clean(stages[stage["key"]]) if stage.get("key") in stages else before
        # Refused on the stage itself (said beside its text box, which may be far down the page).
        if not after:
            title = stage.get("title") or stage.get("key")
            raise StageRefused(f"Stage “{title}” cannot be empty.", stage=stage.get("key") or "")
        if after != _clean(before):  # the model's own text, left as it was, is not the labeler's to shorten
            _check_length(after, stage.get("title") or stage["key"], stage=stage["key"])
        edited = copy.deepcopy(stage)
        edited["text"] = after
        new_stages.append(edited)
        if after != _clean(before):
            diff.append(
                {"key": stage["key"], "title": stage.get("title") or stage["key"], "before": before, "after": after}
            )

    if submit:
        _check_verdict_names_label(new_stages, label=label, names=names)
    status = CotCorrection.Status.SUBMITTED if submit else CotCorrection.Status.DRAFT
    return new_stages, diff, status


VERDICT_STAGES = ("final_judgment", "answer")  # the stage that states the verdict (KuaiMod, BLM-Guard)


def _check_verdict_names_label(stages: list[dict[str, Any]], *, label: str, names: dict[str, str]) -> None:
    """A submitted correction whose final-judgment stage names another label and not the chosen one
    contradicts itself (the reviewer and training would read two verdicts): refused on that stage.
    The text is the labeler's own reasoning, so it is never rewritten for them; a draft may still
    hold the old verdict while they work on it."""

    def named(key: str, text: str) -> bool:
        name = names.get(key, "")
        return key in text or (bool(name) and name != key and name in text)

    for stage in stages:
        if stage.get("key") not in VERDICT_STAGES:
            continue
        text = stage.get("text", "")
        if named(label, text):
            return
        others = [key for key in names if key != label and named(key, text)]
        if others:
            said = ", ".join(f"{key} ({names[key]})" if names[key] != key else key for key in others)
            chosen = f"{label} ({names[label]})" if names[label] != label else label
            title = stage.get("title") or stage["key"]
            raise StageRefused(
                f"“{title}” concludes {said}, but the final label is {chosen}: rewrite this stage "
                f"so it concludes {label}, or make {others[0]} the final label. (A draft may keep it for now.)",
                stage=stage["key"],
            )


def correctable_stages(decision: Decision) -> list[dict[str, Any]]:
    """The stages a labeler edits: the model's, or, when its output did not parse (no stages), every
    stage of the policy's format, blank, to be written from scratch. So even an untrained model's
    invalid answers can be corrected and become training data."""
    stages = decision.cot if isinstance(decision.cot, list) else []
    return stages or _blank_stages(decision.policy_version.output_format)


def _blank_stages(output_format: str) -> list[dict[str, Any]]:
    # The stages the format's parser produces (moderation.inference.cot), so a correction looks like
    # what a parseable answer would have given.
    titled = [*BLM_THINK_STAGES, ("answer", "Answer")] if output_format == "blm" else STAGES
    return [{"key": key, "title": title, "text": "", "evidence": []} for key, title in titled]


def _lock_for_review(*, correction: CotCorrection, by: User, base_revision: int) -> CotCorrection:
    locked = CotCorrection.objects.select_for_update().select_related("author").get(pk=correction.pk)
    if int(base_revision) != locked.revision:
        raise CorrectionConflict(
            f"{locked.author} saved revision {locked.revision} since you opened it; review the new text first.",
            current=locked,
        )
    if locked.author_id == by.pk:
        raise AnnotationError("You wrote this revision; another labeler has to review it.")
    if locked.status != CotCorrection.Status.SUBMITTED:
        raise AnnotationError(
            f"Only submitted corrections can be reviewed; this one is {locked.get_status_display().lower()}."
        )
    return locked


@transaction.atomic
def cot_correction_accept(*, correction: CotCorrection, by: User, base_revision: int) -> CotCorrection:
    """A second labeler (never the author) accepts the submitted revision they were shown."""
    locked = _lock_for_review(correction=correction, by=by, base_revision=base_revision)
    locked.status = CotCorrection.Status.ACCEPTED
    locked.reviewed_by = by
    locked.reviewed_at = timezone.now()
    locked.reject_reason = ""
    locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "reject_reason", "updated_at"])
    _audit_correction(locked, by=by, action="correction.accept")
    _tag2cot_supersede(correction=locked, by=by)
    return locked


def _tag2cot_reopen(*, correction: CotCorrection, by: User) -> None:
    """Open again the Tag2CoT tasks an accepted correction closed, once it is revised (its new text is not
    reviewed, and may be rejected): else the decision could be left with neither an accepted CoT nor a task, which
    the press would not open again (a task for that decision and label exists)."""
    tasks = list(
        Tag2CotTask.objects.select_for_update(of=("self",)).filter(
            superseded_by=correction, status=Tag2CotTask.Status.SUPERSEDED
        )
    )
    for task in tasks:
        task.status, task.superseded_by = Tag2CotTask.Status.OPEN, None
        task.save(update_fields=["status", "superseded_by"])
        audit_event_record(actor=by, action="tag2cot_reopened", obj=task, payload={"correction_id": correction.pk})


def _tag2cot_supersede(*, correction: CotCorrection, by: User) -> None:
    """Close the open Tag2CoT tasks of an accepted correction's decision (``superseded``, naming it): the press
    opens a task only while the decision has no accepted correction, so one opened before it was accepted would
    stay open for reasoning nobody needs, and a labeler finishing it would write a second CoT for one decision.
    A finished task stays as it is (the training data keeps the later of the two, ``training.data``)."""
    tasks = list(
        Tag2CotTask.objects.select_for_update(of=("self",)).filter(
            decision_id=correction.decision_id, status=Tag2CotTask.Status.OPEN
        )
    )
    for task in tasks:
        task.status = Tag2CotTask.Status.SUPERSEDED
        task.superseded_by = correction
        task.lease_expires_at = None
        task.save(update_fields=["status", "superseded_by", "lease_expires_at"])
        audit_event_record(actor=by, action="tag2cot_superseded", obj=task, payload={"correction_id": correction.pk})


@transaction.atomic
def cot_correction_reject(*, correction: CotCorrection, by: User, base_revision: int, reason: str) -> CotCorrection:
    """A second labeler sends the submitted revision back, saying why (the author sees the reason)."""
    reason = _note_checked(reason, what="reason")
    if not reason:
        raise AnnotationError("Say why the correction is rejected, so its author can fix it.")
    locked = _lock_for_review(correction=correction, by=by, base_revision=base_revision)
    locked.status = CotCorrection.Status.REJECTED
    locked.reviewed_by = by
    locked.reviewed_at = timezone.now()
    locked.reject_reason = reason
    locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "reject_reason", "updated_at"])
    _audit_correction(locked, by=by, action="correction.reject", reason=reason)
    return locked


# --- Tag2CoT: write the reasoning for a human label ------------------------------------------

MODEL_DRAFT_BACKENDS = ("transformers", "vllm")
DRAFT_TASK = "annotation.tasks.draft_tag2cot"


# Two presses at once count the drafts still waiting one after the other, so together they stay within the bound.
_TAG2COT_OPEN_LOCK = "SELECT pg_advisory_xact_lock(hashtext('annotation.tag2cot_open'))"

# One press in one statement: the items due found once (``due``, one pass over the labelled history), the first
# ``room`` of them opened by the insert, and from the same rows the tasks opened on videos the presser may see and
# the items left due counted (``{visible}``: the presser's rule, or every video). Parameters: status, stages,
# the final stage's path, created_at, room, cap + 1.
_TAG2COT_PRESS_SQL = """
WITH due AS MATERIALIZED ({due}),
opened AS (
    INSERT INTO annotation_tag2cottask (
        decision_id, video_id, policy_version_id, target_label, label_source, status, stages,
        draft_source, draft_model, draft_error, created_at
    )
    SELECT due.decision_id, due.video_id, due.policy_version_id, due.label, due.source, %s,
        jsonb_set(%s::jsonb, %s, to_jsonb('label: ' || due.label)), '', '', '', %s
    FROM due
    ORDER BY due.video_id
    LIMIT %s
    ON CONFLICT (decision_id, target_label) DO NOTHING
    RETURNING id, video_id
)
SELECT
    ARRAY(SELECT id FROM opened ORDER BY video_id),
    (SELECT count(*) FROM opened WHERE {visible_opened}),
    (SELECT count(*) FROM (
        SELECT 1 FROM due
        WHERE NOT EXISTS (SELECT 1 FROM opened WHERE opened.video_id = due.video_id) AND {visible_due}
        LIMIT %s
    ) left_due)
"""


@dataclasses.dataclass(frozen=True)
class Tag2CotOpening:
    """What one press of "Queue new Tag2CoT tasks" did: the tasks it opened (``created``, every one, and ``seen``:
    how many of them are on videos the presser may see), the bound it kept (``TAG2COT_OPEN_LIMIT``), the model
    drafts that were still waiting before it, and the items due a task that it left for a later press, of those
    the presser may see (``left``, counted as far as ``TAG2COT_DUE_CAP``)."""

    created: list[Tag2CotTask]
    seen: int
    limit: int
    waiting: int
    left: CappedCount


def _visible_sql(user: Any, column: str) -> tuple[str, list[Any]]:
    """``column`` (a video id) among the videos ``user`` may see (``videos_open_to``), as SQL and parameters;
    ``TRUE`` for no user or one who sees every video."""
    if user is None or videos_all_open_to(user=user):
        return "TRUE", []
    sql, params = videos_open_to(user=user).values("pk").query.sql_with_params()
    return f"{column} IN ({sql})", list(params)


@transaction.atomic
def tag2cot_tasks_queue(*, user: Any = None) -> Tag2CotOpening:
    """Open a Tag2CoT task for items with a human label but no acceptable CoT (idempotent), at most
    ``TAG2COT_OPEN_LIMIT`` less the model drafts still waiting on the infer queue.

    Each new task gets a draft: with a VLM serving, a model-assisted draft is queued on the
    inference queue (the model is asked to explain the human label); with the evidence baseline
    serving, the baseline's content-extraction stage pre-fills the first stage right away. The infer
    queue is the one live decisions wait on, and one press could queue a draft for every labelled item
    of an import: the bound counts the drafts already queued, so repeated presses do not stack past it.

    One statement (``_TAG2COT_PRESS_SQL``) finds the items due (``tag2cot_due_sql``: one pass over the labelled
    history), opens the first of them and counts, from the same rows, the opened ones the presser may see and
    the rest; a press reads no labelled item into Python whatever the history, only the few opened are read back
    for their drafts. ``user`` (the presser): what they are told counts only items on videos they may see (the
    tasks are opened for every item due: a restricted queue's labelers see theirs in the list).
    """
    with connection.cursor() as cursor:
        cursor.execute(_TAG2COT_OPEN_LOCK)
    limit = max(1, int(settings.TAG2COT_OPEN_LIMIT))
    waiting = tag2cot_drafts_waiting()
    room = max(0, limit - waiting)
    # Each task's stages start empty but for the final judgment, which names the label (``_empty_stages``).
    stages = _empty_stages("")
    final = next(i for i, stage in enumerate(stages) if stage["key"] == "final_judgment")
    visible_opened, opened_params = _visible_sql(user, "opened.video_id")
    visible_due, due_params = _visible_sql(user, "due.video_id")
    sql = _TAG2COT_PRESS_SQL.format(due=tag2cot_due_sql(), visible_opened=visible_opened, visible_due=visible_due)
    params = [
        Tag2CotTask.Status.OPEN,
        json.dumps(stages),
        [str(final), "text"],
        timezone.now(),
        room,
        *opened_params,
        *due_params,
        TAG2COT_DUE_CAP + 1,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids, seen, left_n = cursor.fetchone()
    created: list[Tag2CotTask] = []
    if ids:
        created = list(Tag2CotTask.objects.filter(pk__in=ids).select_related("policy_version").order_by("video_id"))
    serving = model_version_serving() if created else None
    for task in created:
        if serving is not None and serving.backend in MODEL_DRAFT_BACKENDS:
            enqueue(DRAFT_TASK, task.pk)
        else:
            _draft_from_baseline(task)
    left = CappedCount(min(left_n, TAG2COT_DUE_CAP), left_n <= TAG2COT_DUE_CAP)
    return Tag2CotOpening(created=created, seen=seen, limit=limit, waiting=waiting, left=left)


def _empty_stages(target_label: str) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "title": title,
            "text": f"label: {target_label}" if key == "final_judgment" else "",
            "evidence": [],
        }
        for key, title in STAGES
    ]


def _draft_from_baseline(task: Tag2CotTask) -> None:
    """Pre-fill the content-extraction stage from the evidence baseline (what is in the video);
    the reasoning towards the human label is left to the labeler."""
    from moderation.inference.backends.evidence import EvidenceBaseline

    video = Video.objects.prefetch_related("segments", "keyframes").get(pk=task.video_id)
    spec = task.policy_version.spec()
    result = EvidenceBaseline().decide(content_bundle_for(video), spec.taxonomy, spec.safe_label)
    extraction = next((s for s in result.cot if s.get("key") == "content_extraction"), None)
    stages = _empty_stages(task.target_label)
    if extraction is not None:
        stages[0] = {**stages[0], "text": extraction.get("text", ""), "evidence": extraction.get("evidence", [])}
    task.stages = stages
    task.draft_source = Tag2CotTask.DraftSource.BASELINE
    task.draft_model = "evidence_baseline"
    task.save(update_fields=["stages", "draft_source", "draft_model"])


def tag2cot_draft_with_model(*, task_id: int) -> Tag2CotTask:
    """Ask the serving VLM for the reasoning behind the task's human label (worker side).

    Idempotent: a task already written, or already drafted by the model, is left as it is. The
    model runs outside any transaction; an unparseable answer is kept as ``draft_error`` and the
    baseline pre-fill is used instead.
    """
    task = Tag2CotTask.objects.select_related("policy_version").get(pk=task_id)
    if task.status != Tag2CotTask.Status.OPEN or task.draft_source == Tag2CotTask.DraftSource.MODEL:
        return task
    serving = model_version_serving()
    if serving.backend not in MODEL_DRAFT_BACKENDS:
        _draft_from_baseline(task)
        return task
    video = Video.objects.prefetch_related("segments", "keyframes").get(pk=task.video_id)
    bundle = dataclasses.replace(content_bundle_for(video), target_label=task.target_label)
    backend = get_backend(serving.backend, base_model=serving.base_model, adapter_path=serving.adapter_path)
    [result] = backend.decide_batch([bundle], task.policy_version.spec())
    with transaction.atomic():
        task = Tag2CotTask.objects.select_for_update().get(pk=task_id)
        if task.status != Tag2CotTask.Status.OPEN:  # written, or superseded by a correction, meanwhile
            return task
        if result.cot:
            by_key = {s.get("key"): s for s in result.cot if isinstance(s, dict)}
            task.stages = [
                {
                    "key": key,
                    "title": title,
                    "text": by_key.get(key, {}).get("text", ""),
                    "evidence": by_key.get(key, {}).get("evidence", []),
                }
                for key, title in STAGES
            ]
            task.draft_source = Tag2CotTask.DraftSource.MODEL
            task.draft_model = serving.name
            task.draft_error = ""
            task.save(update_fields=["stages", "draft_source", "draft_model", "draft_error"])
            return task
        task.draft_error = result.parse_error or "the model gave no reasoning"
        task.save(update_fields=["draft_error"])
    _draft_from_baseline(task)
    return task


def _refuse_closed(task: Tag2CotTask) -> None:
    """A task written already, or closed by an accepted correction, takes no claim and no reasoning."""
    if task.status == Tag2CotTask.Status.DONE:
        raise AnnotationError("This reasoning was already written.")
    if task.status == Tag2CotTask.Status.SUPERSEDED:
        raise AnnotationError(
            f"This task was closed: correction #{task.superseded_by_id} of the same decision was accepted, "
            "and its reasoning is the one used for training. Nothing more to write here."
        )


def _tag2cot_lease_end() -> Any:
    return timezone.now() + timedelta(seconds=int(settings.REVIEW_LEASE_SECONDS))


@transaction.atomic
def tag2cot_claim(*, task: Tag2CotTask, user: User) -> Tag2CotTask:
    """Take an open task to write its reasoning (the page's "Write this reasoning" button), under a lease of
    ``REVIEW_LEASE_SECONDS`` as a review item: its holder taking it again renews the lease; another labeler
    may take it over only once the lease lapsed (or it has none: claimed by a page view before leases)."""
    locked = Tag2CotTask.objects.select_for_update(of=("self",)).select_related("assigned_to").get(pk=task.pk)
    _refuse_closed(locked)
    now = timezone.now()
    if locked.assigned_to_id != user.pk and locked.lease_live(now):
        until = timezone.localtime(locked.lease_expires_at).strftime("%H:%M")
        raise AnnotationError(
            f"{locked.assigned_to} is writing this reasoning (held until {until}); pick another task."
        )
    taken_over = locked.assigned_to_id not in (None, user.pk)
    if locked.assigned_to_id != user.pk:
        locked.assigned_to, locked.claimed_at = user, now
    locked.lease_expires_at = _tag2cot_lease_end()
    locked.save(update_fields=["assigned_to", "claimed_at", "lease_expires_at"])
    audit_event_record(actor=user, action="tag2cot_claim", obj=locked, payload={"taken_over": taken_over})
    return locked


@transaction.atomic
def tag2cot_release(*, task: Tag2CotTask, user: User) -> Tag2CotTask:
    """Give back an open task ``user`` holds, so another labeler may write it."""
    locked = Tag2CotTask.objects.select_for_update(of=("self",)).get(pk=task.pk)
    if locked.status != Tag2CotTask.Status.OPEN or locked.assigned_to_id != user.pk:
        raise AnnotationError("This task is not yours to release: it is written, free, or someone else holds it.")
    _tag2cot_free(locked, user=user)
    return locked


def _tag2cot_free(task: Tag2CotTask, *, user: User, **payload: Any) -> None:
    """Clear a locked task's claim and audit its release (by its holder, or on their logout)."""
    task.assigned_to, task.claimed_at, task.lease_expires_at = None, None, None
    task.save(update_fields=["assigned_to", "claimed_at", "lease_expires_at"])
    audit_event_record(actor=user, action="tag2cot_release", obj=task, payload=payload or None)


def tag2cot_release_on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """A labeler who logs out frees the Tag2CoT tasks they held, as a reviewer's items are freed."""
    if user is None or not user.is_authenticated:
        return
    with transaction.atomic():
        held = Tag2CotTask.objects.select_for_update().filter(assigned_to=user, status=Tag2CotTask.Status.OPEN)
        for task in held:
            _tag2cot_free(task, user=user, logout=True)


@transaction.atomic
def tag2cot_write(*, task: Tag2CotTask, author: User, stages: dict[str, str]) -> Tag2CotTask:
    """Store the labeler's five stages for the task's label and close it.

    Every stage must be written; the final judgment must name the target label (the point of
    Tag2CoT is reasoning that arrives at the human's label). Evidence links of the draft are kept.
    A stage that cannot be saved as it is raises ``StageRefused`` with its key, so the screen says it there.
    """
    locked = Tag2CotTask.objects.select_for_update(of=("self",)).select_related("assigned_to").get(pk=task.pk)
    _refuse_closed(locked)
    if locked.assigned_to_id not in (None, author.pk):
        raise AnnotationError(f"{locked.assigned_to} is writing this reasoning; pick another task.")
    unknown = sorted(set(stages) - {key for key, _ in STAGES})
    if unknown:
        raise AnnotationError(f"Unknown CoT stage(s): {', '.join(unknown)}.")
    draft = {s.get("key"): s for s in locked.stages if isinstance(s, dict)}
    written: list[dict[str, Any]] = []
    for key, title in STAGES:
        text = _clean(stages.get(key, ""))
        if not text:
            raise StageRefused(f"Stage “{title}” cannot be empty.", stage=key)
        _check_length(text, title, stage=key)
        written.append({"key": key, "title": title, "text": text, "evidence": draft.get(key, {}).get("evidence", [])})
    if locked.target_label not in written[-1]["text"]:
        raise StageRefused(
            f"The final judgment must name the label “{locked.target_label}” as written here "
            f"(e.g. “label: {locked.target_label}”); its English name alone is not read as the verdict.",
            stage=written[-1]["key"],
        )
    locked.stages = written
    locked.status = Tag2CotTask.Status.DONE
    locked.author = author
    locked.assigned_to = author
    locked.completed_at = timezone.now()
    locked.lease_expires_at = None
    locked.save(update_fields=["stages", "status", "author", "assigned_to", "completed_at", "lease_expires_at"])
    return locked


# --- disagreements between the model and user feedback → adjudication -----------------------

EVALUATE_BATCH = 500


def disagreements_evaluate(*, video_ids: list[int] | None = None) -> list[Adjudication]:
    """Check the active disagreement rules for ``video_ids`` (all videos with feedback when
    ``None``) against each video's latest decision; open one adjudication per new disagreement.

    Idempotent: one adjudication per (decision, rule kind), enforced by a unique constraint, so a
    re-run (each ingest batch, the periodic sweep) never opens a second task.
    """
    rules = list(DisagreementRule.objects.filter(is_active=True).order_by("pk"))
    if not rules:
        return []
    aggregates = FeedbackAggregate.objects.order_by("video_id")
    if video_ids is not None:
        aggregates = aggregates.filter(video_id__in=video_ids)
    created: list[Adjudication] = []
    batch: list[FeedbackAggregate] = []
    for agg in aggregates.iterator(chunk_size=EVALUATE_BATCH):
        batch.append(agg)
        if len(batch) >= EVALUATE_BATCH:
            created += _evaluate_batch(batch, rules)
            batch = []
    if batch:
        created += _evaluate_batch(batch, rules)
    return created


def _rule_reason(rule: DisagreementRule, decision: Decision, stats: dict[str, Any]) -> str | None:
    """Why ``rule`` fires for this decision and feedback, or ``None`` when it does not."""
    kind = DisagreementRule.Kind
    passed = not decision.is_violation and not decision.parse_error and bool(decision.label)
    if rule.kind == kind.REPORTED_PASS and passed:
        rate = stats["report_rate"]
        if stats["views"] >= rule.min_events and rate is not None and rate >= rule.threshold:
            return (
                f"The model passed it ({decision.label}), but {stats['reports']} of {stats['views']} viewers "
                f"reported it (report rate {rate:.1%} ≥ {rule.threshold:.1%})."
            )
    elif rule.kind == kind.APPEAL_OVERTURNED and decision.is_violation:
        if stats["appeals_overturned"] >= max(rule.min_events, 1):
            return (
                f"The model flagged it ({decision.label}), but {stats['appeals_overturned']} "
                f"appeal{pluralize(stats['appeals_overturned'])} against the moderation succeeded (overturned)."
            )
    elif rule.kind == kind.POSITIVE_ENGAGEMENT and decision.is_violation:
        rate = stats["like_rate"]
        if stats["views"] >= rule.min_events and rate is not None and rate >= rule.threshold:
            return (
                f"The model flagged it ({decision.label}), but engagement is strongly positive: "
                f"{stats['likes']} likes over {stats['views']} views (like rate {rate:.1%} ≥ {rule.threshold:.1%})."
            )
    return None


def _evaluate_batch(aggregates: list[FeedbackAggregate], rules: list[DisagreementRule]) -> list[Adjudication]:
    ids = [a.video_id for a in aggregates]
    # The latest decision of each video (DISTINCT ON), in one query.
    latest = {
        d.video_id: d
        for d in Decision.objects.filter(video_id__in=ids)
        .order_by("video_id", "-created_at", "-pk")
        .distinct("video_id")
    }
    candidates: list[Adjudication] = []
    for agg in aggregates:
        decision = latest.get(agg.video_id)
        if decision is None:
            continue
        stats = feedback_stats_from(agg)
        for rule in rules:
            reason = _rule_reason(rule, decision, stats)
            if reason is not None:
                candidates.append(
                    Adjudication(
                        video_id=agg.video_id,
                        decision=decision,
                        kind=rule.kind,
                        rule=rule,
                        reason=reason,
                        feedback=stats,
                    )
                )
    if not candidates:
        return []
    with transaction.atomic():
        existing = set(
            Adjudication.objects.filter(decision_id__in=[c.decision_id for c in candidates]).values_list(
                "decision_id", "kind"
            )
        )
        new = [c for c in candidates if (c.decision_id, c.kind) not in existing]
        # Two rules of one kind, or a concurrent sweep: the unique constraint keeps one.
        Adjudication.objects.bulk_create(new, ignore_conflicts=True)
    return [
        a
        for a in Adjudication.objects.filter(decision_id__in=[c.decision_id for c in new]).order_by("pk")
        if (a.decision_id, a.kind) in {(c.decision_id, c.kind) for c in new}
    ]


@transaction.atomic
def adjudication_decide(*, adjudication: Adjudication, by: User, label: str, note: str = "") -> Adjudication:
    """Settle a disagreement: ``label`` becomes the video's trusted label (ItemLabel source
    ``adjudication``), and the decision is written to the audit log."""
    locked = (
        Adjudication.objects.select_for_update(of=("self",))
        .select_related("decision__policy_version")
        .get(pk=adjudication.pk)
    )
    if locked.status == Adjudication.Status.DECIDED:
        raise AnnotationError(f"Already decided by {locked.decided_by}: {locked.outcome_label}.")
    version = locked.decision.policy_version
    label = (label or "").strip()
    if label not in version.label_names():
        raise AnnotationError(f"Choose a label of policy {version}.")
    locked.status = Adjudication.Status.DECIDED
    locked.outcome_label = label
    locked.note = _note_checked(note, what="note")
    locked.decided_by = by
    locked.decided_at = timezone.now()
    locked.save(update_fields=["status", "outcome_label", "note", "decided_by", "decided_at"])
    ItemLabel.objects.update_or_create(
        video_id=locked.video_id,
        source=ItemLabel.Source.ADJUDICATION,
        defaults={"label": label, "policy_version": version},
    )
    event_label_final(
        video_id=locked.video_id, label=label, source=ItemLabel.Source.ADJUDICATION, policy_version=version
    )
    audit_event_record(
        actor=by,
        action="adjudication.decide",
        obj=locked,
        payload={
            "video": locked.video_id,
            "decision": locked.decision_id,
            "kind": locked.kind,
            "model_label": locked.decision.label,
            "label": label,
            "agrees_with_model": label == locked.decision.label,
            "note": locked.note,
        },
    )
    return locked
