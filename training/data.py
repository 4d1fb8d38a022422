"""Training data from human work: DPO preference pairs and SFT chat records, with lineage and a leak-free split.

Pure reads + unsaved rows; ``training.services`` owns the snapshot (rows, files). Sources:

* DPO (mistake-oriented): chosen = human-consistent CoT, rejected = the model's CoT for the same prompt.
  A labeler's written CoT (an accepted CoT correction or a finished Tag2CoT task) beats an adjudicated
  disagreement, which beats a reviewer override.
* SFT: accepted CoT corrections, finished Tag2CoT tasks (the labeler's five stages for a human label), and
  model CoTs a reviewer confirmed (Review verdict ``approve``) that no human later contradicted.

A decision gets one labeler-written CoT: when it has both an accepted correction and a finished Tag2CoT task,
the later human work wins (``_written_cots``).

Every record keeps a ``lineage`` dict (reviews, correction, adjudication, policy version, and the
model version that produced the rejected / confirmed output). The train/eval split is decided per
``split_group_for(video)`` so that everything about one video (and later one reproduction cluster)
lands on the same side.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import F, QuerySet

from annotation.models import Adjudication, CotCorrection, Tag2CotTask
from moderation.inference.prompts import policy_prompt
from moderation.inference.services import content_bundle_for
from moderation.models import Decision, Review, Video
from training.models import PreferencePair, SftRecord
from training.prompts import cot_render

Collected = TypeVar("Collected", PreferencePair, SftRecord)

# Corrections that count as human-consistent CoT. A second labeler's acceptance is required
# (drafts, submitted-but-unreviewed and rejected corrections are not training data).
ACCEPTABLE_CORRECTION_STATUSES = (CotCorrection.Status.ACCEPTED,)


def split_group_for(video: Video) -> str:
    """The unit a train/eval split keeps together.

    The video's reproduction cluster when it has one (re-uploads and edits of the same content,
    ``moderation.reproduction`` ClusterMembership), so near-duplicates never straddle the split;
    otherwise the video itself.
    """
    try:
        cluster = video.repro_cluster.cluster_key  # type: ignore[attr-defined]
    except (ObjectDoesNotExist, AttributeError):
        cluster = ""
    return f"cluster:{cluster}" if cluster else f"video:{video.pk}"


def split_for(group: str, eval_share: float) -> str:
    """A stable split for a group: the same group always lands on the same side, build after build."""
    if eval_share <= 0:
        return PreferencePair.Split.TRAIN
    bucket = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return PreferencePair.Split.EVAL if bucket < eval_share else PreferencePair.Split.TRAIN


def _decisions(ids: Iterable[int]) -> dict[int, Decision]:
    qs = Decision.objects.select_related("video", "policy_version__policy", "model_version").prefetch_related(
        "video__segments", "video__keyframes"
    )
    return qs.in_bulk(list(ids))


def _prompt_parts(decision: Decision) -> tuple[str, str, list[str]]:
    """(system, user, image paths) exactly as inference builds them for this decision's video and policy."""
    bundle = content_bundle_for(decision.video)
    prompt = policy_prompt(bundle, decision.policy_version.spec(), image_paths=bundle.image_paths)
    return prompt.system, prompt.user, list(prompt.image_paths)


def _base_lineage(decision: Decision, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "decision_id": decision.pk,
        "video_id": decision.video_id,
        "split_group": split_group_for(decision.video),
        "policy_version_id": decision.policy_version_id,
        "policy_version": str(decision.policy_version),
        "model_version_id": decision.model_version_id,
        "model_version": decision.model_version.name,
    }


def _accepted_corrections(**filters: Any) -> list[CotCorrection]:
    rows = CotCorrection.objects.filter(status__in=ACCEPTABLE_CORRECTION_STATUSES, **filters)
    return list(rows.order_by("decision_id"))


def _done_tag2cot(**filters: Any) -> list[Tag2CotTask]:
    """Each decision's newest finished Tag2CoT task, written for the decision's own policy version.

    A task is opened for the video's latest decision under that decision's policy version, so the label it
    reasons towards is one of that version's; a task whose version differs (never made by the app) is not
    training data: its label may not exist in the prompt the record is built from.
    """
    rows = (
        Tag2CotTask.objects.filter(
            status=Tag2CotTask.Status.DONE, policy_version_id=F("decision__policy_version_id"), **filters
        )
        .exclude(stages=[])
        .exclude(target_label="")
    )
    newest = rows.order_by("decision_id", F("completed_at").desc(nulls_last=True), "-pk").distinct("decision_id")
    return list(newest)


def _written_cots(
    corrections: list[CotCorrection], tasks: list[Tag2CotTask]
) -> tuple[list[CotCorrection], list[Tag2CotTask], dict[int, dict[str, Any]]]:
    """One labeler-written CoT per decision: of an accepted correction and a finished Tag2CoT task on the same
    decision, the later human work wins (the correction's acceptance against the task's completion; a tie goes
    to the correction, which a second labeler checked). Both are a person's considered reasoning; the later one
    was written knowing more (a Tag2CoT task is only opened while the decision has no accepted correction, so
    a correction accepted after it is the newer word, and a task finished after a correction was superseded is
    too). Returns the kept corrections, the kept tasks, and per decision the lineage naming what lost."""
    kept = {c.decision_id: c for c in corrections}
    kept_tasks: list[Tag2CotTask] = []
    superseded: dict[int, dict[str, Any]] = {}
    for task in tasks:
        correction = kept.get(task.decision_id)
        if correction is None:
            kept_tasks.append(task)
            continue
        accepted_at = correction.reviewed_at or correction.updated_at
        done_at = task.completed_at or task.created_at
        if done_at > accepted_at:
            del kept[task.decision_id]
            kept_tasks.append(task)
            superseded[task.decision_id] = {"superseded_correction_id": correction.pk}
        else:
            superseded[task.decision_id] = {"superseded_tag2cot_task_id": task.pk}
    return list(kept.values()), kept_tasks, superseded


def _tag2cot_lineage(task: Tag2CotTask) -> dict[str, Any]:
    """Where a record made from a finished Tag2CoT task comes from: the task, its labeler and the human label's
    origin (a review, an override, an adjudication or an import)."""
    return {
        "tag2cot_task_id": task.pk,
        "author_id": task.author_id,
        "target_label": task.target_label,
        "label_source": task.label_source,
    }


def _newest_per_decision(rows: QuerySet[Any], newest_first: str = "-created_at") -> list[Any]:
    """Each decision's newest row of ``rows`` (one per decision, by ``newest_first`` then id)."""
    return list(rows.order_by("decision_id", newest_first, "-pk").distinct("decision_id"))


def _unique_and_split(
    by_decision: dict[int, Collected], content: Callable[[Collected], Any], eval_share: float
) -> list[Collected]:
    """In decision order, drop each record whose ``content`` repeats an earlier one's (another decision on
    the same content), and put the rest in their video group's split."""
    seen: set[str] = set()
    out = []
    for _pk, record in sorted(by_decision.items()):
        key = hashlib.sha256(json.dumps(content(record), sort_keys=True).encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        record.split = split_for(record.lineage["split_group"], eval_share)
        out.append(record)
    return out


def _correction_lineage(correction: CotCorrection) -> dict[str, Any]:
    """Where a record made from an accepted CoT correction comes from: the revision, its author and accepter."""
    return {
        "correction_id": correction.pk,
        "correction_revision": correction.revision,
        "author_id": correction.author_id,
        "accepted_by_id": correction.reviewed_by_id,
    }


def _reviews_of(decision_ids: list[int]) -> dict[int, list[Review]]:
    out: dict[int, list[Review]] = {}
    for review in Review.objects.filter(decision_id__in=decision_ids).order_by("created_at", "pk"):
        out.setdefault(review.decision_id, []).append(review)
    return out


# --- DPO --------------------------------------------------------------------------------------


def preference_pairs_collect(
    *, eval_share: float = 0.0, rejected_model_version_id: int | None = None
) -> list[PreferencePair]:
    """One unsaved pair per decision a human disagreed with, deduplicated, split by video group.

    ``rejected_model_version_id``: only the mistakes of that model version (KuaiMod's mistake-oriented
    DPO: the rejected side is the output of the model being improved, e.g. the serving SFT model, not
    an older model's, whose errors the current one may no longer make).
    """
    pairs: dict[int, PreferencePair] = {}

    by_model = {} if rejected_model_version_id is None else {"decision__model_version_id": rejected_model_version_id}
    corrections, tag2cots, superseded = _written_cots(_accepted_corrections(**by_model), _done_tag2cot(**by_model))
    adjudications = _newest_per_decision(
        Adjudication.objects.filter(status=Adjudication.Status.DECIDED, **by_model).exclude(outcome_label=""),
        "-decided_at",
    )
    overrides = _newest_per_decision(Review.objects.filter(verdict=Review.Verdict.OVERRIDE, **by_model))
    decisions = _decisions(
        {c.decision_id for c in corrections}
        | {t.decision_id for t in tag2cots}
        | {a.decision_id for a in adjudications}
        | {r.decision_id for r in overrides}
    )
    reviews = _reviews_of(list(decisions))

    def rejected_of(decision: Decision) -> str:
        # The model's own words when it produced parseable stages; its raw output otherwise.
        if decision.cot:
            return cot_render(decision.cot, decision.label, decision.policy_version)
        return decision.raw_output

    def add(decision: Decision, source: str, chosen: str, label: str, extra: dict[str, Any]) -> None:
        if decision.pk in pairs:
            return  # a stronger source already made this decision's pair
        system, user, images = _prompt_parts(decision)
        lineage = {
            **_base_lineage(decision, source),
            "review_ids": [r.pk for r in reviews.get(decision.pk, [])],
            "rejected_model_version_id": decision.model_version_id,
            "rejected_model_version": decision.model_version.name,
            **extra,
        }
        pair = PreferencePair(
            decision=decision,
            source=source,
            prompt=f"{system}\n\n{user}\n",
            chosen=chosen,
            rejected=rejected_of(decision),
            label=label,
            images=images,
            lineage=lineage,
        )
        # The two turns as inference sends them (not stored on the row; written to the JSONL), so a
        # job can give the model the same system + user conversation it is served.
        pair.prompt_turns = (system, user)  # type: ignore[attr-defined]
        pairs[decision.pk] = pair

    for correction in corrections:
        decision = decisions[correction.decision_id]
        chosen = cot_render(correction.stages, correction.label, decision.policy_version)
        add(
            decision,
            PreferencePair.Source.CORRECTION,
            chosen,
            correction.label,
            {
                **_correction_lineage(correction),
                "correction_status": correction.status,
                **superseded.get(decision.pk, {}),
            },
        )
    for task in tag2cots:
        # A Tag2CoT task is opened only where the model's CoT did not reach the human label (or could not be
        # parsed): the labeler's reasoning towards that label against the model's own is a mistake pair.
        decision = decisions[task.decision_id]
        chosen = cot_render(task.stages, task.target_label, decision.policy_version)
        add(
            decision,
            PreferencePair.Source.TAG2COT,
            chosen,
            task.target_label,
            {**_tag2cot_lineage(task), **superseded.get(decision.pk, {})},
        )
    for adjudication in adjudications:
        decision = decisions[adjudication.decision_id]
        if adjudication.outcome_label == decision.label:
            continue  # the adjudicator sided with the model: no mistake to learn from
        extraction = [s for s in decision.cot if s.get("key") == "content_extraction"]
        verdict = {"key": "final_judgment", "text": (adjudication.note or adjudication.reason).strip()}
        chosen = cot_render([*extraction, verdict], adjudication.outcome_label, decision.policy_version)
        add(
            decision,
            PreferencePair.Source.ADJUDICATION,
            chosen,
            adjudication.outcome_label,
            {
                "adjudication_id": adjudication.pk,
                "adjudication_kind": adjudication.kind,
                "decided_by_id": adjudication.decided_by_id,
            },
        )
    for review in overrides:
        decision = decisions[review.decision_id]
        extraction = [s for s in decision.cot if s.get("key") == "content_extraction"]
        verdict = {"key": "final_judgment", "text": review.note.strip()}
        chosen = cot_render([*extraction, verdict], review.label, decision.policy_version)
        add(
            decision,
            PreferencePair.Source.OVERRIDE,
            chosen,
            review.label,
            {
                "override_review_id": review.pk,
                "reviewer_id": review.reviewer_id,
            },
        )

    # A pair whose two sides are the same text teaches nothing (e.g. a correction that changed nothing).
    useful = {pk: pair for pk, pair in pairs.items() if pair.chosen != pair.rejected}
    return _unique_and_split(useful, lambda pair: [pair.prompt, pair.chosen, pair.rejected], eval_share)


def preference_pair_row(pair: PreferencePair) -> dict[str, Any]:
    """TRL's preference columns plus images, the human label (GRPO's target) and lineage (a JSON string).

    ``system`` and ``user`` are the prompt's two chat turns as inference builds them (``prompt`` is
    the two joined); the jobs train on the conversation, so the model sees its served chat format.
    """
    system, user = getattr(pair, "prompt_turns", ("", ""))
    return {
        "prompt": pair.prompt,
        "system": system,
        "user": user,
        "chosen": pair.chosen,
        "rejected": pair.rejected,
        "images": list(pair.images),
        "label": pair.label,
        "decision_id": pair.decision_id,
        "source": pair.source,
        "lineage": json.dumps(pair.lineage, ensure_ascii=False, sort_keys=True),
    }


# --- SFT --------------------------------------------------------------------------------------


def sft_records_collect(*, eval_share: float = 0.0) -> list[SftRecord]:
    """Chat records from accepted corrections, finished Tag2CoT tasks and reviewer-confirmed model CoTs."""
    records: dict[int, SftRecord] = {}
    corrections, tag2cots, superseded = _written_cots(_accepted_corrections(), _done_tag2cot())
    confirmed_reviews = _newest_per_decision(
        Review.objects.filter(verdict=Review.Verdict.APPROVE).exclude(decision__parse_error__gt="")
    )
    contradicted = set(
        Review.objects.filter(verdict=Review.Verdict.OVERRIDE).values_list("decision_id", flat=True)
    ) | set(Adjudication.objects.filter(status=Adjudication.Status.DECIDED).values_list("decision_id", flat=True))
    decisions = _decisions(
        {c.decision_id for c in corrections}
        | {t.decision_id for t in tag2cots}
        | {r.decision_id for r in confirmed_reviews}
    )
    reviews = _reviews_of(list(decisions))

    def add(decision: Decision, source: str, assistant: str, label: str, extra: dict[str, Any]) -> None:
        if decision.pk in records:
            return
        system, user, images = _prompt_parts(decision)
        user_content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        user_content.append({"type": "text", "text": user})
        records[decision.pk] = SftRecord(
            decision=decision,
            source=source,
            messages=[
                {"role": "system", "content": [{"type": "text", "text": system}]},
                {"role": "user", "content": user_content},
                {"role": "assistant", "content": [{"type": "text", "text": assistant}]},
            ],
            images=images,
            label=label,
            lineage={
                **_base_lineage(decision, source),
                "review_ids": [r.pk for r in reviews.get(decision.pk, [])],
                **extra,
            },
        )

    for correction in corrections:
        decision = decisions[correction.decision_id]
        text = cot_render(correction.stages, correction.label, decision.policy_version)
        add(
            decision,
            SftRecord.Source.CORRECTION,
            text,
            correction.label,
            {**_correction_lineage(correction), **superseded.get(decision.pk, {})},
        )
    for task in tag2cots:
        decision = decisions[task.decision_id]
        text = cot_render(task.stages, task.target_label, decision.policy_version)
        add(
            decision,
            SftRecord.Source.TAG2COT,
            text,
            task.target_label,
            {**_tag2cot_lineage(task), **superseded.get(decision.pk, {})},
        )
    for review in confirmed_reviews:
        if review.decision_id in contradicted:
            continue
        decision = decisions[review.decision_id]
        if not decision.cot or review.label != decision.label:
            continue
        text = cot_render(decision.cot, decision.label, decision.policy_version)
        add(
            decision,
            SftRecord.Source.CONFIRMED,
            text,
            decision.label,
            {
                "confirming_review_id": review.pk,
                "reviewer_id": review.reviewer_id,
            },
        )

    return _unique_and_split(records, lambda record: record.messages, eval_share)


def sft_record_row(record: SftRecord) -> dict[str, Any]:
    """TRL's conversational ``messages`` (typed content parts) plus ``images``, label and lineage."""
    return {
        "messages": record.messages,
        "images": list(record.images),
        "label": record.label,
        "decision_id": record.decision_id,
        "source": record.source,
        "lineage": json.dumps(record.lineage, ensure_ascii=False, sort_keys=True),
    }


def flatten_messages(messages: list[dict[str, Any]], *, keep_images: bool) -> list[dict[str, Any]]:
    """Text-only models' chat templates take string content: join the text parts, drop image placeholders."""
    flat = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list) and not keep_images:
            content = "".join(part.get("text", "") for part in content if part.get("type") == "text")
        flat.append({"role": message["role"], "content": content})
    return flat
