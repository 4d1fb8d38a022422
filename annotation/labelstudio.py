"""Label Studio interop (label-studio-sdk): export a review queue's items as a Label Studio project
with the model's verdict and CoT as pre-annotations, and import the annotations back as reviews and
CoT corrections, idempotently (one import per Label Studio annotation id).

The SDK is imported inside the functions: the web process only loads it when someone uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import quoteattr

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.errors import AnnotationError
from annotation.models import CotCorrection, LabelStudioImport
from annotation.services import cot_correction_save
from moderation.errors import ModerationError
from moderation.inference.backends import STAGES
from moderation.inference.models import Decision
from moderation.media.models import Video
from moderation.media.selectors import video_open_to, videos_open_to
from moderation.policies.models import PolicyVersion
from moderation.policies.taxonomy import SEVERITIES
from moderation.review.models import Review, ReviewQueue, ReviewTask
from moderation.review.selectors import review_queues_for, review_queues_open_to
from moderation.review.services import review_submit
from workbench.roles import Perm

OPEN = (ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED)
TITLES = dict(STAGES)


def labelstudio_client(*, url: str, api_key: str) -> Any:
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url, api_key=api_key)


def labeling_config(version: PolicyVersion) -> str:
    """Video, keyframes and transcript to look at; a choice per policy label; the violation's severity (a
    violation verdict is refused without one: ``review_submit``); a text area for the CoT."""
    choices = "\n".join(
        f"    <Choice value={quoteattr(key)} hint={quoteattr(name)}/>" for key, name in version.label_names().items()
    )
    severities = "\n".join(f"    <Choice value={quoteattr(s)}/>" for s in SEVERITIES)
    return f"""<View>
  <Header value="$title"/>
  <Video name="video" value="$video"/>
  <Image name="keyframes" valueList="$keyframes"/>
  <Text name="transcript" value="$transcript"/>
  <Choices name="label" toName="transcript" choice="single" required="true" showInline="false">
{choices}
  </Choices>
  <Header value="Severity (for a violation)"/>
  <Choices name="severity" toName="transcript" choice="single" showInline="true">
{severities}
  </Choices>
  <TextArea name="cot" toName="transcript" rows="10" editable="true" maxSubmissions="1"/>
</View>"""


def cot_as_text(cot: Any) -> str:
    """The CoT as one text: ``[Stage title] text`` per stage (parsed back by :func:`cot_from_text`)."""
    stages = cot if isinstance(cot, list) else []
    return "\n\n".join(
        f"[{s.get('title') or TITLES.get(s.get('key', ''), s.get('key', ''))}] {s.get('text', '')}".strip()
        for s in stages
        if isinstance(s, dict)
    )


def cot_from_text(text: str, cot: Any) -> dict[str, str]:
    """Stage texts keyed like ``cot`` from text written as ``[Stage title] …`` blocks."""
    stages = [s for s in (cot if isinstance(cot, list) else []) if isinstance(s, dict)]
    by_title = {(s.get("title") or TITLES.get(s.get("key", ""), "")).strip().lower(): s["key"] for s in stages}
    out: dict[str, str] = {}
    parts = re.split(r"^\[([^\]\n]+)\]\s*", text or "", flags=re.MULTILINE)
    for title, body in zip(parts[1::2], parts[2::2], strict=False):
        key = by_title.get(title.strip().lower())
        if key is not None:
            out[key] = body.strip()
    return out


def _abs(base_url: str, url: str) -> str:
    return url if url.startswith(("http://", "https://")) else base_url.rstrip("/") + url


def _task_for(decision: Decision, base_url: str) -> dict[str, Any]:
    video = decision.video
    segments = list(video.segments.all())
    transcript = "\n".join(f"[{s.start:.1f}s] {s.text}" for s in segments) or video.asr_text or "(no speech)"
    keyframes = [_abs(base_url, k.image.url) for k in video.keyframes.all() if k.selected and k.image]
    result: list[dict[str, Any]] = []
    if decision.label:
        result.append(
            {"from_name": "label", "to_name": "transcript", "type": "choices", "value": {"choices": [decision.label]}}
        )
    if decision.cot:
        result.append(
            {
                "from_name": "cot",
                "to_name": "transcript",
                "type": "textarea",
                "value": {"text": [cot_as_text(decision.cot)]},
            }
        )
    return {
        "data": {
            "decision_id": decision.pk,
            "video_id": video.pk,
            "title": video.title or f"video {video.pk}",
            "video": _abs(base_url, video.file.url) if video.file else "",
            "keyframes": keyframes,
            "transcript": transcript,
        },
        "predictions": [{"model_version": decision.model_version.name, "score": decision.confidence, "result": result}],
    }


@dataclass(frozen=True)
class LabelStudioExport:
    """What a Label Studio project needs: its labeling config and the tasks to import (a JSON list,
    the format of Label Studio's "Import" dialog), and how many items matched before the cap."""

    config: str
    tasks: list[dict[str, Any]]
    matched: int
    title: str


# The most tasks one download or project holds: a bigger export is a request that takes minutes.
EXPORT_LIMIT = 2000


def labelstudio_export_queues(*, user: Any) -> QuerySet[ReviewQueue]:
    """The review queues whose open items ``user`` may export (titles, videos, the model's label and
    reasoning): the moderation queues open to them (``review_queues_open_to``: active, and a restricted one only
    to its groups), none without the labeler's permission. The one rule of the export screen's list and of
    ``manage.py labelstudio export --as``."""
    if not user.is_authenticated or not user.is_active or not user.has_perm(Perm.CORRECT_COT):
        return ReviewQueue.objects.none()
    return review_queues_open_to(user=user).filter(kind=ReviewQueue.Kind.MODERATION)


def labelstudio_queue_items(
    *, queue: str, since: datetime | None = None, until: datetime | None = None, user: Any = None
) -> QuerySet[Decision]:
    """The decisions behind review queue ``queue``'s open items (its slug), decided in ``[since, until)``; with
    ``user``, only those about videos open to them (``videos_open_to``). A queue open to all can hold an item of a
    video another policy's routing sent to a restricted queue (one policy's open queue does not open what another
    restricted): its title, speech, on-screen text and keyframes stay with that queue's groups."""
    decisions = Decision.objects.filter(review_tasks__queue__slug=queue, review_tasks__status__in=OPEN)
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    if until is not None:
        decisions = decisions.filter(created_at__lt=until)
    if user is not None:
        decisions = videos_open_to(user=user, qs=decisions, field="video_id")
    return decisions.distinct().order_by("pk")


def labelstudio_queue_export(
    *, queue: str, base_url: str, since: datetime | None = None, until: datetime | None = None, user: Any = None
) -> LabelStudioExport:
    """Review queue ``queue``'s open items as Label Studio tasks with the model's label (``Choices``)
    and CoT as the pre-annotation; with ``user``, the items about videos open to them. Refused when nothing
    matches or the items mix policy versions."""
    matching = labelstudio_queue_items(queue=queue, since=since, until=until, user=user)
    decisions = list(
        matching.select_related("video", "policy_version__policy", "model_version").prefetch_related(
            "video__segments", "video__keyframes"
        )[:EXPORT_LIMIT]
    )
    if not decisions:
        window = " in the chosen days" if since or until else ""
        raise AnnotationError(f"Queue “{queue}” has no open items{window} to export.")
    if len({d.policy_version_id for d in decisions}) > 1:
        raise AnnotationError("The queue mixes policy versions; export one policy version per project.")
    version = decisions[0].policy_version
    return LabelStudioExport(
        config=labeling_config(version),
        tasks=[_task_for(d, base_url) for d in decisions],
        matched=matching.count() if len(decisions) == EXPORT_LIMIT else len(decisions),
        title=f"{queue} · {version}",
    )


def labelstudio_export_queue(*, client: Any, queue: str, by: User, base_url: str, title: str = "") -> tuple[int, int]:
    """Create a Label Studio project holding the open items of review queue ``queue`` (its slug), for ``by``:
    refused unless ``by`` may export that queue (``labelstudio_export_queues``, as on the export screen).

    Returns ``(project id, number of tasks)``. ``base_url`` is where Label Studio can fetch our
    media (the workbench's public address).
    """
    if not labelstudio_export_queues(user=by).filter(slug=queue).exists():
        raise AnnotationError(
            f"No review queue “{queue}” that {by.get_username()} may export: it does not exist, is inactive or "
            "restricted to groups they are not in, or they do not have the labeler role."
        )
    export = labelstudio_queue_export(queue=queue, base_url=base_url, user=by)
    project = client.projects.create(
        title=(title or export.title)[:50],
        description=f"Exported from the review workbench at {timezone.now():%Y-%m-%d %H:%M}.",
        label_config=export.config,
    )
    client.projects.import_tasks(id=project.id, request=export.tasks)
    return project.id, len(export.tasks)


@dataclass
class ImportResult:
    imported: int = 0
    already: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    # Annotations not imported, each with its task, its annotation and why: a task naming no decision of this
    # workbench, an id or a result of the wrong shape. The rest of the project is imported all the same.
    skipped: list[dict[str, Any]] = field(default_factory=list)


# Label Studio's ids are stored in integer columns (``LabelStudioImport``).
_LS_ID_MAX = 2**31 - 1


def _ls_id(value: Any, *, what: str) -> int:
    """A Label Studio id (a task's, an annotation's, the decision id a task carries) as stored: a whole number from 1
    to 2**31-1, else ``AnnotationError`` naming it. A project's tasks and annotations are anyone's to edit in Label
    Studio: "12", 1.5, true or a 30-digit number there made the import a 500 or a traceback."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _LS_ID_MAX:
        raise AnnotationError(f"Its {what} is {str(value)[:40]!r}, not a whole number from 1 to {_LS_ID_MAX}.")
    return value


def _choice(value: dict[str, Any]) -> str:
    choices = value.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], str):
        raise AnnotationError(f"A choice is {str(choices)[:40]!r}, not a list of names.")
    return choices[0]


def _annotation_values(result: Any) -> tuple[str, str, str]:
    """The label, severity and CoT text of an annotation's ``result``; ``AnnotationError`` when it is not the shape
    the exported config makes (a list of objects, choices a list of names, text a list of strings)."""
    if not isinstance(result, list):
        raise AnnotationError(f"Its result is {type(result).__name__}, not a list.")
    label, severity, cot_text = "", "", ""
    for item in result:
        if not isinstance(item, dict):
            raise AnnotationError(f"A result item is {type(item).__name__}, not an object.")
        value = item.get("value") or {}
        if not isinstance(value, dict):
            raise AnnotationError(f"A result value is {type(value).__name__}, not an object.")
        if item.get("from_name") == "label" and value.get("choices"):
            label = _choice(value)
        elif item.get("from_name") == "severity" and value.get("choices"):
            severity = _choice(value)
        elif item.get("from_name") == "cot" and value.get("text"):
            texts = value["text"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise AnnotationError(f"The CoT text is {type(texts).__name__}, not a list of strings.")
            cot_text = "\n".join(texts)
    return label, severity, cot_text


def labelstudio_import_project(*, client: Any, ls_url: str, project_id: int, by: User) -> ImportResult:
    """Bring a project's annotations back: the label as a review of the decision (approve when it
    is the model's, override otherwise), an edited CoT as a submitted correction by ``by``.

    Idempotent by Label Studio annotation id; each annotation is imported in its own transaction. An annotation that
    cannot be imported (its task names no decision of this workbench, an id or a result of the wrong shape) is
    listed in ``skipped`` with why, and the rest are imported: one stray task no longer stopped every later one.
    """
    result = ImportResult()
    done = set(
        LabelStudioImport.objects.filter(ls_url=ls_url, ls_project_id=project_id).values_list(
            "ls_annotation_id", flat=True
        )
    )
    for task in client.tasks.list(project=project_id, fields="all"):
        for annotation in task.annotations or []:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled") or not annotation.get("result"):
                continue
            try:
                annotation_id = _ls_id(annotation.get("id"), what="annotation id")
                if annotation_id in done:
                    result.already += 1
                    continue
                outcome = _import_one(ls_url, project_id, task, annotation, by)
            except AnnotationError as exc:
                result.skipped.append(
                    {
                        "task": str(getattr(task, "id", ""))[:40],
                        "annotation": str(annotation.get("id"))[:40],
                        "reason": str(exc),
                    }
                )
                continue
            result.outcomes.append(outcome)
            if outcome["result"] != "already":
                result.imported += 1
            else:
                result.already += 1
    return result


@transaction.atomic
def _import_one(ls_url: str, project_id: int, task: Any, annotation: dict[str, Any], by: User) -> dict[str, Any]:
    task_id = _ls_id(task.id, what="task id")
    data = task.data if isinstance(task.data, dict) else {}
    raw_decision = data.get("decision_id")
    decision_id = _ls_id(raw_decision, what="decision_id") if raw_decision is not None else None
    decision = Decision.objects.select_for_update().filter(pk=decision_id).first() if decision_id is not None else None
    if decision is None:
        raise AnnotationError(f"Label Studio task {task_id} names no decision of this workbench.")
    if LabelStudioImport.objects.filter(ls_url=ls_url, ls_annotation_id=annotation["id"]).exists():
        return {"annotation": annotation["id"], "result": "already"}
    label, severity, cot_text = _annotation_values(annotation["result"])
    author = str(annotation.get("created_username") or "").strip(" ,")[:150] or "unknown"
    note = f"Label Studio annotation #{annotation['id']} (project {project_id}, by {author})"
    did: list[str] = []
    if not video_open_to(user=by, video_id=decision.video_id):
        # A task names its decision by id, and a Label Studio project's tasks are anyone's to edit there: a decision
        # about a video routed to a queue restricted to groups ``by`` is not in takes neither their review (an open
        # queue's item of it, another policy's) nor their correction, as the workbench's own screens refuse them.
        did.append(f"refused: video {decision.video_id} is not open to {by.get_username()}")
    else:
        if label:
            did.append(_import_review(decision, label, severity, note, by))
        edited = cot_from_text(cot_text, decision.cot)
        # The stored CoT is unvalidated JSON (stages are dicts, their keys and texts may be missing).
        model_text: dict[Any, Any] = {s.get("key"): s.get("text", "") for s in decision.cot if isinstance(s, dict)}
        changed = edited and any(edited.get(k, v).strip() != str(v).strip() for k, v in model_text.items())
        if changed and not by.has_perm(Perm.CORRECT_COT):
            did.append(f"correction refused: {by.get_username()} does not have the labeler role")
        elif changed:
            current = CotCorrection.objects.filter(decision=decision).first()
            try:
                cot_correction_save(
                    decision=decision,
                    author=by,
                    stages={k: v for k, v in edited.items() if v},
                    label=label or decision.label,
                    base_revision=current.revision if current else 0,
                )
                did.append("correction")
            except AnnotationError as exc:
                did.append(f"correction refused: {exc}")
    LabelStudioImport.objects.create(
        ls_url=ls_url,
        ls_project_id=project_id,
        ls_task_id=task_id,
        ls_annotation_id=annotation["id"],
        decision=decision,
        label=label,
        result=", ".join(did)[:40] or "nothing",
    )
    return {"annotation": annotation["id"], "decision": decision.pk, "label": label, "result": ", ".join(did)}


def _import_review(decision: Decision, label: str, severity: str, note: str, by: User) -> str:
    """Record the label as a review on one of the decision's open review tasks (claimed for ``by``), in a
    queue ``by`` may work (``review_queues_for``: a reviewer's role, a restricted queue only for its groups)."""
    task = (
        ReviewTask.objects.select_for_update()
        .filter(decision=decision, status__in=OPEN, is_gold=False, queue__in=review_queues_for(user=by))
        .order_by("status", "pk")
        .first()
    )
    if task is None:
        return f"review skipped: no open review task in a queue {by.get_username()} may work"
    verdict = Review.Verdict.APPROVE if label == decision.label else Review.Verdict.OVERRIDE
    try:
        with transaction.atomic():  # a refused verdict also undoes the claim
            now = timezone.now()
            task.status = ReviewTask.Status.CLAIMED
            task.claimed_by = by
            task.claimed_at = now
            task.lease_expires_at = now + timedelta(minutes=5)
            task.save(update_fields=["status", "claimed_by", "claimed_at", "lease_expires_at"])
            review_submit(task=task, user=by, verdict=verdict, label=label, severity=severity, note=note)
    except ModerationError as exc:
        return f"review refused: {exc}"
    return "review"


def labelstudio_tags_config(names: list[str]) -> str:
    """A Label Studio config for content tags: a ``Taxonomy`` over the given tag names (hierarchy
    by parent where the vocabulary has one) beside the video's text."""
    from moderation.tagging.models import Tag

    tags = {t.name: t for t in Tag.objects.filter(name__in=names).select_related("parent")}
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for name in names:
        tag = tags.get(name)
        parent = tag.parent.name if tag is not None and tag.parent is not None and tag.parent.name in tags else ""
        (children.setdefault(parent, []) if parent else roots).append(name)

    def choice(name: str) -> str:
        inner = "".join(choice(c) for c in children.get(name, []))
        return f"<Choice value={quoteattr(name)}>{inner}</Choice>"

    return (
        '<View><Header value="$title"/><Text name="text" value="$text"/>'
        f'<Taxonomy name="tags" toName="text">{"".join(choice(r) for r in roots)}</Taxonomy></View>'
    )


class TagVideos:
    """Which videos a tag export takes."""

    REVIEWED = "reviewed"  # a reviewer accepted, rejected or added tags (a TagEvent)
    AWAITING = "awaiting"  # tag suggestions, no review yet (what Label Studio labelers would tag)
    ALL = "all"
    CHOICES = [
        (REVIEWED, "Reviewed: with the reviewers' tags"),
        (AWAITING, "Awaiting review: with the ranker's suggestions"),
        (ALL, "Both"),
    ]


def labelstudio_tag_videos(
    *,
    which: str,
    tag_ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    user: Any = None,
) -> QuerySet[Video]:
    """The videos a tag export takes, oldest first: reviewed ones whose tag review (an event on one
    of ``tag_ids``; None = any tag) falls in ``[since, until)``, and/or ones with suggestions among
    ``tag_ids`` and no review yet, uploaded in ``[since, until)``. With ``user``, only the videos open to
    them (``videos_open_to``: a restricted review queue's content stays with its groups); None: every one
    (the management command)."""
    from moderation.tagging.models import TagEvent, TagSuggestion, VideoTag

    events = TagEvent.objects.all()
    suggestions = TagSuggestion.objects.all()
    if tag_ids is not None:
        events, suggestions = events.filter(tag_id__in=tag_ids), suggestions.filter(tag_id__in=tag_ids)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    reviewed = Q(pk__in=events.values("video_id"))
    awaiting = (
        Q(pk__in=suggestions.values("video_id"))
        & ~Q(pk__in=TagEvent.objects.values("video_id"))
        & ~Q(pk__in=VideoTag.objects.values("video_id"))
    )
    if since is not None:
        awaiting &= Q(created_at__gte=since)
    if until is not None:
        awaiting &= Q(created_at__lt=until)
    chosen = {TagVideos.REVIEWED: reviewed, TagVideos.AWAITING: awaiting}.get(which, reviewed | awaiting)
    videos = Video.objects.filter(chosen).order_by("pk")
    return videos if user is None else videos_open_to(user=user, qs=videos)


def labelstudio_tag_task(
    *, video: Any, base_url: str, limit: int = 10, names: set[str] | None = None
) -> dict[str, Any]:
    """One Label Studio task for tagging ``video``: its text, and the ranker's top suggestions as a
    ``Taxonomy`` pre-annotation (``model_version``: the ranker version that ranked them, "tag-ranker v3",
    or "weighted-sum"); the reviewed tags instead once a reviewer has tagged it (even when
    the reviewer rejected every suggestion: then no tag, not the rejected ones). ``names``: only
    these tags (a tag set's), None for all. The data carries what the reviewers accepted, rejected
    and added, and which ranker versions ranked what they answered, for Label Studio's data manager."""
    from moderation.tagging.models import TagEvent, TagSuggestion, VideoTag
    from moderation.tagging.selectors import tag_ranker_label

    def kept(tags: list[str]) -> list[str]:
        return tags if names is None else [t for t in tags if t in names]

    events = list(
        TagEvent.objects.filter(video=video).order_by("at", "pk").values_list("action", "tag__name", "ranked_by")
    )
    given = kept(list(VideoTag.objects.filter(video=video).order_by("pk").values_list("tag__name", flat=True)))
    was_reviewed = bool(events) or VideoTag.objects.filter(video=video).exists()
    suggestions = [
        s
        for s in TagSuggestion.objects.filter(video=video).select_related("tag", "ranker").order_by("-score", "tag_id")
        if names is None or s.tag.name in names
    ][:limit]
    suggested = [(s.tag.name, s.score) for s in suggestions]
    # A video's suggestions are scored together (a retrain re-scores them all): the top one's ranker ranked them.
    ranked_by = tag_ranker_label(ranker=suggestions[0].ranker if suggestions else None)
    chosen = given if was_reviewed else [name for name, _ in suggested]
    text = "\n".join(p for p in (video.title, video.description, video.ocr_text, video.asr_text) if p)
    data: dict[str, Any] = {
        "video_id": video.pk,
        "title": video.title or f"video {video.pk}",
        "text": text or "(no text)",
        "video": _abs(base_url, video.file.url) if video.file else "",
    }
    if events:
        for action, key in (("accept", "tags_accepted"), ("reject", "tags_rejected"), ("add", "tags_added")):
            data[key] = kept(sorted({name for act, name, _ in events if act == action}))
        # Empty: answered before the version was recorded, or only tags found by search.
        data["ranked_by"] = ", ".join(sorted({by for _, _, by in events if by}))
    return {
        "data": data,
        "predictions": [
            {
                "model_version": "reviewed" if was_reviewed else ranked_by,
                "score": max((s for _, s in suggested), default=0.0),
                "result": [
                    {
                        "from_name": "tags",
                        "to_name": "text",
                        "type": "taxonomy",
                        "value": {"taxonomy": [[name] for name in chosen]},
                    }
                ],
            }
        ],
    }


def labelstudio_tag_export(
    *,
    which: str,
    base_url: str,
    tag_ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    user: Any = None,
) -> LabelStudioExport:
    """Videos to tag as Label Studio tasks (``Taxonomy`` over the chosen tags, or over every tag
    the videos were suggested or given) with their suggestions or reviewed tags pre-annotated; with ``user``,
    only videos open to them (``labelstudio_tag_videos``)."""
    from moderation.tagging.models import Tag, TagSuggestion, VideoTag

    matching = labelstudio_tag_videos(which=which, tag_ids=tag_ids, since=since, until=until, user=user)
    videos = list(matching[:EXPORT_LIMIT])
    if not videos:
        raise AnnotationError("No videos match: widen the days, choose another tag set or other videos.")
    ids = [v.pk for v in videos]
    if tag_ids is not None:
        names = sorted(Tag.objects.filter(pk__in=tag_ids).values_list("name", flat=True))
    else:
        names = sorted(
            set(TagSuggestion.objects.filter(video_id__in=ids).values_list("tag__name", flat=True))
            | set(VideoTag.objects.filter(video_id__in=ids).values_list("tag__name", flat=True))
        )
    allowed = set(names) if tag_ids is not None else None
    return LabelStudioExport(
        config=labelstudio_tags_config(names),
        tasks=[labelstudio_tag_task(video=v, base_url=base_url, names=allowed) for v in videos],
        matched=matching.count() if len(videos) == EXPORT_LIMIT else len(videos),
        title=f"tags · {len(videos)} videos",
    )


def labelstudio_export_tags(*, client: Any, video_ids: list[int], base_url: str, title: str = "") -> tuple[int, int]:
    """Create a Label Studio project to tag these videos (Taxonomy over the tags they were suggested
    or given). Returns ``(project id, number of tasks)``."""
    from moderation.tagging.models import TagSuggestion, VideoTag

    videos = list(Video.objects.filter(pk__in=video_ids).order_by("pk"))
    if not videos:
        raise AnnotationError("No videos to export.")
    names = sorted(
        set(TagSuggestion.objects.filter(video_id__in=video_ids).values_list("tag__name", flat=True))
        | set(VideoTag.objects.filter(video_id__in=video_ids).values_list("tag__name", flat=True))
    )
    project = client.projects.create(
        title=(title or f"tags · {len(videos)} videos")[:50],
        description=f"Content tags exported from the review workbench at {timezone.now():%Y-%m-%d %H:%M}.",
        label_config=labelstudio_tags_config(names),
    )
    client.projects.import_tasks(
        id=project.id, request=[labelstudio_tag_task(video=v, base_url=base_url) for v in videos]
    )
    return project.id, len(videos)
