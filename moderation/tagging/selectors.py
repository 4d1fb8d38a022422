"""Tagging reads: vocabulary search, tag resolution at a vocabulary version, a video's suggestions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
    Window,
)
from django.db.models.functions import Length, Lower
from django.shortcuts import get_object_or_404
from django.utils import timezone

from moderation.tagging import text as tagtext
from moderation.tagging.models import TAG_TRY_MAX_ATTEMPTS, Tag, TagImport, TagRevision, TagSet, TagSuggestion
from workbench.db import aggregate_row, aggregate_rows_read

SEARCH_LIMIT = 20


@dataclass(frozen=True)
class TagSearchResult:
    """The first ``limit`` matches of a type-ahead search and how many tags matched in all."""

    tags: list[Tag]
    total: int


def tag_search(
    *, query: str, limit: int = SEARCH_LIMIT, tag_set: TagSet | None = None, include_inactive: bool = False
) -> list[Tag]:
    """The tags of ``tag_search_ranked`` without the count (the vocabulary editor, scripts)."""
    return tag_search_ranked(query=query, limit=limit, tag_set=tag_set, include_inactive=include_inactive).tags


def tag_search_ranked(
    *,
    query: str,
    limit: int = SEARCH_LIMIT,
    tag_set: TagSet | None = None,
    include_inactive: bool = False,
    video_id: int | None = None,
    videos_visible: QuerySet[Any] | None = None,
) -> TagSearchResult:
    """Active tags (all tags with ``include_inactive``: the vocabulary editor) whose name or an alias contains
    ``query`` (case-insensitive, NFKC), and how many matched; one or two Latin letters (``tagtext.short_query``) only
    where a name or an alias starts with them, not anywhere inside one. Ranked: the exact name first; then, for ``video_id``,
    the tags the ranker suggested for that video, higher score first (a tagger typing "美" on a food video wants
    美食, not 美人 because 人 sorts first); then the tags accepted most often; then names starting with the query;
    then shorter names. ``videos_visible`` (the caller's ``videos_open_to``) keeps a video the caller may not see
    from ranking anything: its suggestions would say what it is about.

    The GIN index on ``search_grams`` narrows the vocabulary to tags holding every bigram of the
    query (the unigram for a one-character query); ``search_text`` then confirms the substring. The total is a
    window count over the same rows: one indexed statement, whatever the vocabulary size."""
    q = tagtext.normalise(query.strip())[:100]
    grams = tagtext.query_grams(q)
    if not grams:
        return TagSearchResult(tags=[], total=0)
    rows = _searched(tag_set=tag_set, include_inactive=include_inactive)
    if tagtext.short_query(q):  # the start of the name or of an alias (``search_text``: one per line)
        rows = rows.filter(search_grams__contains=grams).filter(
            Q(search_text__startswith=q) | Q(search_text__contains=f"\n{q}")
        )
    else:
        rows = rows.filter(search_grams__contains=grams, search_text__contains=q)
    suggested: Any = Value(None, output_field=FloatField())
    if video_id is not None:
        suggestions = TagSuggestion.objects.filter(video_id=video_id, tag_id=OuterRef("pk"))
        if videos_visible is not None:
            suggestions = suggestions.filter(video__in=videos_visible)
        suggested = Subquery(
            suggestions.values("score")[:1],
            output_field=FloatField(),
        )
    rows = (
        rows.annotate(name_lower=Lower("name"))
        .annotate(
            exact=Case(When(name_lower=q, then=Value(0)), default=Value(1), output_field=IntegerField()),
            prefix=Case(When(name_lower__startswith=q, then=Value(0)), default=Value(1), output_field=IntegerField()),
            suggested_score=suggested,
            name_len=Length("name"),
            matches=Window(Count("id")),
        )
        .order_by("exact", F("suggested_score").desc(nulls_last=True), "-accepted_count", "prefix", "name_len", "name")
    )
    tags: list[Tag] = list(rows.only("id", "name", "aliases", "accepted_count")[:limit])
    return TagSearchResult(tags=tags, total=getattr(tags[0], "matches", 0) if tags else 0)


def _searched(*, tag_set: TagSet | None, include_inactive: bool) -> QuerySet[Tag]:
    """The tags ``tag_search`` looks among: active ones (all with ``include_inactive``), of ``tag_set`` when it names
    tags (a set naming none offers the whole vocabulary)."""
    rows: QuerySet[Tag] = Tag.objects.all()
    if not include_inactive:
        rows = rows.filter(is_active=True)
    if tag_set is not None and tag_set.pk and tag_set.tags.exists():
        rows = rows.filter(tag_sets=tag_set)
    return rows


def tag_search_count(*, tag_set: TagSet | None = None, include_inactive: bool = False) -> int:
    """How many tags ``tag_search`` looks among (the empty search's "Type to search the N tags")."""
    return _searched(tag_set=tag_set, include_inactive=include_inactive).count()


def tag_named_or_aliased(*, word: str) -> Tag | None:
    """The tag named ``word`` exactly, else the active tag whose name or alias ``word`` is once normalised (NFKC, lower
    case, as a video's text is matched): what an editor types as a tag's parent. The vocabulary's names are mostly
    Chinese and their aliases English, and "food" (an alias of 美食) was refused as "not a tag". An alias is one active
    tag's only (``services._word_clash``), so the second look-up finds one tag at most."""
    word = word.strip()
    if not word:
        return None
    named = Tag.objects.filter(name=word).first()
    if named is not None:
        return named
    lines = Func(F("search_text"), Value("\n"), function="string_to_array", output_field=ArrayField(TextField()))
    return (
        Tag.objects.filter(is_active=True)
        .annotate(words=lines)
        .filter(words__overlap=[tagtext.normalise(word)])
        .order_by("name")
        .first()
    )


def tag_resolve(*, tag_id: int, version_number: int) -> TagRevision | None:
    """What tag ``tag_id`` was at vocabulary version ``version_number`` (its latest revision then)."""
    return (
        TagRevision.objects.filter(tag_id=tag_id, version__number__lte=version_number)
        .select_related("version")
        .order_by("-version__number")
        .first()
    )


def tag_set_tag_ids(*, tag_set: TagSet) -> set[int] | None:
    """The tags a tag set allows, or None for all active tags."""
    ids = set(tag_set.tags.values_list("pk", flat=True))
    return ids or None


def tag_task_recorded(*, task: Any) -> dict[str, object] | None:
    """What was recorded for a done tags-queue item (who, when, the tags kept), or None while it is
    open: the tag screen of a done item says so instead of offering its form again (Back after
    "Submit tags and next" reloads it, and a second submit was only refused)."""
    from moderation.review.models import ReviewTask
    from moderation.tagging.models import TagEvent, VideoTag

    if task.status != ReviewTask.Status.DONE:
        return None
    event = TagEvent.objects.filter(task=task).select_related("reviewer").order_by("-at").first()
    video_id = task.decision.video_id
    return {
        "by": event.reviewer.get_username() if event else "",
        "at": task.completed_at or (event.at if event else None),
        "tags": list(
            VideoTag.objects.filter(video_id=video_id).order_by("tag__name").values_list("tag__name", flat=True)
        ),
    }


# The state once candidates were made or failed (a try running records one before), and the VLM's reason where it
# gave no answer (its model failed, or its tries were stopped: ``tag_tries_recover``), not a parse note beside one.
_PANEL_VIDEO_ROW_SQL = """
    SELECT (SELECT s.error FROM moderation_videotagstate s
             WHERE s.video_id = %s AND (s.generated_at IS NOT NULL OR s.error <> '')),
           (SELECT s.vlm_error FROM moderation_videotagstate s WHERE s.video_id = %s AND s.vlm_at IS NULL),
           (SELECT jsonb_agg(jsonb_build_object('pk', t.id, 'name', t.name, 'aliases', t.aliases) ORDER BY t.name)
              FROM moderation_videotag vt JOIN moderation_tag t ON t.id = vt.tag_id WHERE vt.video_id = %s),
           (SELECT array_remove(ARRAY[
                       CASE WHEN s.candidates_attempts >= %s AND s.candidates_started_at IS NULL THEN 'candidates' END,
                       CASE WHEN s.vlm_attempts >= %s AND s.vlm_started_at IS NULL THEN 'vlm' END], NULL)
              FROM moderation_videotagstate s WHERE s.video_id = %s)
"""


def tag_panel_for(*, video_id: int, tag_set: TagSet) -> dict[str, object]:
    """What the tags panel shows: the ranked suggestions above the tag set's show threshold (with
    sources, score, evidence and whether they start selected), and the video's current tags."""
    from django.contrib.postgres.aggregates import JSONBAgg
    from django.db import connection
    from django.db.models import Subquery

    from moderation.tagging.models import TagCandidate, TagSource, TagSuggestion

    # Drawn with every review screen (and with the screen claimed ahead): two queries (the tag set is the caller's),
    # reading only what the panel draws. The tag set's tags and the chips' evidence are subqueries of the chips' one
    # query, the video's tags and its tagging state one row (they were a query each); no embedding (a vector per
    # chip's tag and one for the video), features or search text is read.
    in_set = TagSet.tags.through.objects.filter(tagset_id=tag_set.pk)
    evidence_of = (
        TagCandidate.objects.filter(
            video_id=OuterRef("video_id"), tag_id=OuterRef("tag_id"), source__in=["text", "vlm", "related"]
        )
        .values("tag_id")
        .annotate(lists=JSONBAgg("evidence"))
        .values("lists")
    )
    suggestions = list(
        TagSuggestion.objects.filter(video_id=video_id, score__gte=tag_set.show_threshold, tag__is_active=True)
        .filter(Exists(in_set.filter(tag_id=OuterRef("tag_id"))) | ~Exists(in_set))  # an empty set: every tag
        .select_related("tag", "ranker")
        .only(
            "tag_id",
            "score",
            "sources",
            "ranker_id",
            "tag__name",
            "tag__aliases",
            "ranker__kind",
            "ranker__version",
            "ranker__n_events",
        )  # fmt: skip
        .annotate(evidence_lists=Subquery(evidence_of))
        .order_by("-score", "tag_id")[: tag_set.max_suggestions]
    )
    evidence: dict[int, list[dict[str, object]]] = {
        s.tag_id: [e for ev in s.evidence_lists or () for e in ev or ()]  # type: ignore[attr-defined]
        for s in suggestions
    }
    # The video's tags and its tagging state's error in one row: what the "seen" inputs and the added chips draw, and
    # whether candidates were made or failed (``state``: None before they were made).
    # A fixed statement: the ORM built this row's two aggregated subqueries anew on every screen, which cost more
    # Python time than the two round trips it saved.
    with connection.cursor() as cursor:
        cursor.execute(
            _PANEL_VIDEO_ROW_SQL,
            [video_id, video_id, video_id, TAG_TRY_MAX_ATTEMPTS, TAG_TRY_MAX_ATTEMPTS, video_id],
        )
        state_error, vlm_error, current_tags, given_up = cursor.fetchone()
    # Django reads jsonb as text (JSONField decodes it): so is this.
    video_row = {"state_error": state_error, "current_tags": json.loads(current_tags) if current_tags else None}
    current = [{"tag_id": t["pk"], "tag": t} for t in video_row["current_tags"] or ()]
    state = None if video_row["state_error"] is None else {"error": video_row["state_error"]}
    if vlm_error:
        state = {"error": "", **(state or {}), "vlm_error": vlm_error}
    current_ids = {vt["tag_id"] for vt in current}
    # A chip's badges are the sources' short keys; what each means is said in words beside the chips (the legend
    # lists the sources on the chips shown) and in each badge's title.
    source_names = dict(TagSource.choices)
    chips = [
        {
            "tag": s.tag,
            "score": s.score,
            "sources": s.sources,
            "source_names": [(key, source_names.get(key, key)) for key in s.sources],
            "evidence": evidence.get(s.tag_id, [])[:3],
            "preselected": s.score >= tag_set.preselect_threshold,
            "selected": s.tag_id in current_ids if current else s.score >= tag_set.preselect_threshold,
        }
        for s in suggestions
    ]
    shown = {s.tag_id for s in suggestions}
    extra = [vt["tag"] for vt in current if vt["tag_id"] not in shown]
    legend = sorted({(key, source_names.get(key, key)) for s in suggestions for key in s.sources})
    # Which ranker ordered these chips (recorded on each suggestion; a retrain re-scores untagged videos' ones).
    ranked_by = tag_ranker_description(ranker=suggestions[0].ranker) if suggestions else ""
    return {
        "chips": chips, "extra": extra, "current": current, "state": state, "tag_set": tag_set,
        "source_legend": legend, "ranked_by": ranked_by,
        # Sent back with the tags ("" for the weighted sum): their events name this ranker even when a retrain
        # re-scored the chips while the panel was open (``services.RankedWith``).
        "ranked_with": (suggestions[0].ranker_id or "") if suggestions else None,
        # The tag tasks given up after TAG_TRY_MAX_ATTEMPTS lost tries ("candidates", "vlm"): each gets Try again.
        "given_up": given_up or [],
    }  # fmt: skip


RANKER_RUNS_SHOWN = 15
RANKERS_SHOWN = 10


def tag_ranker_overview() -> dict[str, object]:
    """The ranker page: the active ranker and its weights, the latest training runs (``tag_ranker_runs``) and the
    latest ranker versions (the run that made each, and whether it may be made active again)."""
    from moderation.tagging import ranking
    from moderation.tagging.models import TagClassifier, TagEvent, TagRanker

    active = tag_ranker_active()
    rankers = list(TagRanker.objects.prefetch_related("trainings").order_by("-version")[:RANKERS_SHOWN])
    for r in rankers:
        r.run = next(iter(r.trainings.all()), None)  # type: ignore[attr-defined]
        r.restorable = not r.is_active and (  # type: ignore[attr-defined]
            r.kind != TagRanker.Kind.LOGISTIC or r.feature_names == list(ranking.APP_FEATURES)
        )
    return {
        "active": active,
        "weights": list(zip(active.feature_names, active.coefficients, strict=False)) if active else [],
        "rankers": rankers,
        "events": TagEvent.objects.count(),
        "classifiers": TagClassifier.objects.count(),
        "since": tag_ranker_events_since(),
        **tag_ranker_runs(),
    }


def tag_ranker_active() -> Any:
    """The ranker new candidates are ranked by, or None (the weighted sum: no ranker trained yet)."""
    from moderation.tagging.models import TagRanker

    return TagRanker.objects.filter(is_active=True).order_by("-pk").first()


@dataclass(frozen=True)
class EventsSince:
    """What reviewers answered since the last training run read the events."""

    previous: Any  # the latest run that read them (succeeded, skipped or failed), or None
    new_events: int  # events after it (every event when there is none)
    last_event_id: int  # the newest event's id now (0: none yet)


def tag_ranker_events_since() -> EventsSince:
    """The reviewer events that arrived after the latest training run that read them (two index lookups and a count
    over the new ones: the hourly beat asks this before it trains). Events are append-only, so the newest id a run
    read is where the next one's new events start. A run that never read them (queued, lost, from before this
    was recorded) or a beat tick that found nothing new is not one."""
    from django.db.models import Max

    from moderation.tagging.models import TagEvent, TagRankerTraining

    Status = TagRankerTraining.Status
    previous = (
        TagRankerTraining.objects.filter(
            last_event_id__isnull=False, status__in=[Status.DONE, Status.SKIPPED, Status.FAILED]
        )
        .select_related("ranker")
        .order_by("-pk")
        .first()
    )
    last = TagEvent.objects.aggregate(n=Max("pk"))["n"] or 0
    events = TagEvent.objects.all() if previous is None else TagEvent.objects.filter(pk__gt=previous.last_event_id)
    return EventsSince(previous=previous, new_events=events.count(), last_event_id=last)


def tag_ranker_label(*, ranker: Any) -> str:
    """The short name exports give whatever ordered a video's suggestions: ``tag-ranker v3`` (a learned ranker
    version) or ``weighted-sum`` (no learned ranker yet: the sources' default weights)."""
    from moderation.tagging.models import TagRanker

    if ranker is None or ranker.kind != TagRanker.Kind.LOGISTIC:
        return "weighted-sum"
    return f"tag-ranker v{ranker.version}"


def tag_ranker_run_starter(*, run: Any) -> str:
    """Who or what started a run, in words: ``alice (the ranker page)``, ``manage.py train_tag_ranker (by
    deploy)`` (the command's OS user), ``beat (hourly)``."""
    trigger = run.get_trigger_display()
    if run.requested_by is not None:
        os_user = f", OS user {run.operator}" if run.operator else ""
        return f"{run.requested_by.get_username()} ({trigger}{os_user})"
    return f"{trigger} (by {run.operator})" if run.operator else trigger


def tag_ranker_runs(*, now: Any = None) -> dict[str, Any]:
    """The latest training runs of the tag ranker, newest first, each with ``summary`` (its outcome in words) and
    ``late`` (queued past ``RESEND_AFTER`` with no worker taking it, or running past ``STALLED_AFTER``: its worker
    is lost), and ``follow``: whether the page should keep polling (a run is queued or running, not late)."""
    from django.utils import timezone

    from moderation.tagging.models import TagRankerTraining

    now = now or timezone.now()
    runs = list(TagRankerTraining.objects.select_related("requested_by", "ranker", "previous")[:RANKER_RUNS_SHOWN])
    follow = False
    for run in runs:
        late = run.is_open and run.may_resend(now=now)
        follow = follow or (run.is_open and not late)
        run.late = late  # type: ignore[attr-defined]
        run.summary = tag_ranker_run_summary(run=run)  # type: ignore[attr-defined]
        run.starter = tag_ranker_run_starter(run=run)  # type: ignore[attr-defined]
    return {"runs": runs, "follow": follow}


def tag_ranker_run_summary(*, run: Any) -> str:
    """A run's outcome in one line (the page's row, the command's output)."""
    from workbench.formatting import metric_text

    Status = type(run).Status
    if run.status == Status.QUEUED:
        return f"queued: waiting for a worker on the default queue{_new_events_text(run)}"
    if run.status == Status.RUNNING:
        return f"running: fitting the ranker on reviewers' events{_new_events_text(run)}"
    if run.status == Status.FAILED:
        return f"failed: {run.error}"
    if run.status == Status.UNCHANGED:
        last = timezone.localtime(run.finished_at).strftime("%H:%M") if run.finished_at else "—"
        times = "once" if run.checks == 1 else f"{run.checks} times"
        return f"skipped: {run.reason} Beat found nothing new {times}, last at {last}."
    new = _new_events_text(run)
    if run.status == Status.SKIPPED:
        return f"skipped: {run.reason}{new}"  # the reason counts the events
    counts = f"{run.n_events} event{'' if run.n_events == 1 else 's'} on {run.n_videos} video{'' if run.n_videos == 1 else 's'}{new}"
    if run.heldout_p_at_5 is None:
        score = f"held-out P@5 {run.heldout_note or 'none'}"
    else:
        score = (
            f"held-out P@5 {metric_text(run.heldout_p_at_5)} on {run.heldout_videos} videos "
            f"(weighted sum {metric_text(run.heldout_weighted_p_at_5)})"
        )
    made = f"ranker v{run.ranker.version}" if run.ranker else "a ranker since removed"
    return f"succeeded: {made} from {counts}; {score}"


def _new_events_text(run: Any) -> str:
    """`` (12 new since run #4)``, `` (none new since run #4: retrained on demand)``, or nothing (no earlier run that
    read the events)."""
    if run.new_events is None or run.previous_id is None:
        return ""
    if run.new_events == 0:
        return f" (none new since run #{run.previous_id}: retrained on demand)"
    return f" ({run.new_events} new since run #{run.previous_id})"


def tag_ranker_description(*, ranker: Any) -> str:
    """How a video's suggestions were ranked, in words: by which ranker version, or by the weighted sum."""
    from moderation.tagging.models import TagRanker

    if ranker is None or ranker.kind != TagRanker.Kind.LOGISTIC:
        return "the weighted sum of the sources: not enough reviewer events yet for a learned ranker"
    return f"ranker v{ranker.version} (learned from {ranker.n_events} reviewer events)"


def tag_vlm_model() -> Any:
    """The VLM that proposes free-text tags (candidate source 5), or None when none serves.

    ``TAG_VLM_MODEL``: empty = the model serving the default policy (else the globally serving one)
    when its backend is a VLM (transformers, vLLM) — the evidence baseline and the stage-1 cascade
    are not; ``off`` = never; any other value names a model version (None, and ``tag_vlm_model_problem``
    says why, when it names none or one that is no VLM)."""
    return tag_vlm_model_and_problem()[0]


def tag_vlm_model_problem() -> str:
    """Why ``TAG_VLM_MODEL`` asks no VLM although it names one, in a sentence for the operator: it names no model
    version (a typo, or one not registered yet), or one that writes no free text. Empty when the setting is empty,
    ``off`` or names a VLM. Read where the database is (the curation page, ``manage.py check --database default``,
    ``migrate``), not at start: a process starts before the registry is migrated, and a model registered after
    the deploy is named correctly all along."""
    return tag_vlm_model_and_problem()[1]


def tag_vlm_model_and_problem() -> tuple[Any, str]:
    from django.conf import settings

    from moderation.inference.backends import VLM_BACKENDS
    from moderation.inference.models import ModelVersion
    from moderation.policies.models import PolicyVersion

    choice = str(settings.TAG_VLM_MODEL or "").strip()
    if choice.lower() == "off":
        return None, ""
    if not choice:
        active = PolicyVersion.objects.filter(policy__slug="kuaimod", is_active=True).select_related("policy").first()
        model = active.policy.serving_model if active is not None else None
        if model is None:
            model = ModelVersion.objects.filter(is_serving=True).order_by("-created_at").first()
        usable = model is not None and model.backend in VLM_BACKENDS and bool(model.base_model)
        return (model if usable else None), ""
    model = ModelVersion.objects.filter(name=choice).first()
    if model is not None and model.backend in VLM_BACKENDS and model.base_model:
        return model, ""
    vlms = list(
        ModelVersion.objects.filter(backend__in=VLM_BACKENDS)
        .exclude(base_model="")
        .order_by("name")
        .values_list("name", flat=True)[:10]
    )
    fix = (
        f"set it to one of the VLM model versions ({', '.join(vlms)}), "
        if vlms
        else "register a VLM model version (transformers or vLLM backend) and name it there, or set it "
    ) + "empty for the model serving the default policy, or off."
    if model is None:
        return None, f"TAG_VLM_MODEL={choice!r} names no model version, so no VLM proposes tags: {fix}"
    if model.backend not in VLM_BACKENDS:
        return None, (
            f"TAG_VLM_MODEL={choice!r} names a model version whose backend ({model.get_backend_display()}) writes no "
            f"free text, so no VLM proposes tags: {fix}"
        )
    return (
        None,
        f"TAG_VLM_MODEL={choice!r} names a model version with no base model to load, so no VLM proposes tags: {fix}",
    )


def tag_vocabulary_examples(*, limit: int = 40) -> list[str]:
    """The tags a VLM is shown as examples: the most accepted active ones (then by name), so the
    prompt's prefix stays the same from one video to the next."""
    return list(
        Tag.objects.filter(is_active=True).order_by("-accepted_count", "name").values_list("name", flat=True)[:limit]
    )


def _proposal_open_to_q(*, user: Any) -> Q:
    """A proposal ``user`` may read: seen on a video open to them, or on none (its sightings' videos are
    gone). One seen only on videos hidden from them (a restricted queue's) is that content: its phrase is
    what a model wrote about those videos, so it is counted, never named (``tag_curation_counts``)."""
    from moderation.media.selectors import video_open_to_q
    from moderation.tagging.models import TagProposalSighting

    sightings = TagProposalSighting.objects.filter(proposal_id=OuterRef("pk"))
    return ~Exists(sightings) | Exists(sightings.filter(video_open_to_q(user=user, field="video_id")))


def tag_curation_row(*, user: Any) -> QuerySet[Any]:
    """Pending proposals ``user`` may read (``pending``) and those seen only on videos hidden from them
    (``restricted``): one row (``workbench.db.aggregate_row``), to read beside other counts."""
    from moderation.tagging.models import TagProposal

    return aggregate_row(
        TagProposal.objects.filter(status=TagProposal.Status.PENDING),
        pending=Count("pk", filter=_proposal_open_to_q(user=user)),
        restricted=Count("pk", filter=~_proposal_open_to_q(user=user)),
    )


def tag_curation_counts(*, user: Any) -> dict[str, int]:
    """``tag_curation_row`` read, in one query."""
    counts = aggregate_rows_read({"curation": tag_curation_row(user=user)})["curation"]
    return {key: int(value or 0) for key, value in counts.items()}


def tag_proposals_pending(*, user: Any, limit: int = 100) -> list[Any]:
    """The curation queue: pending proposals ``user`` may read (``_proposal_open_to_q``), most seen first,
    each with the latest sightings ``user`` may see (``open_sightings``) and a count of the others
    (``restricted_sightings``)."""
    from moderation.tagging.models import TagProposal

    pending = TagProposal.objects.filter(status=TagProposal.Status.PENDING).filter(_proposal_open_to_q(user=user))
    return _with_sightings_open_to(user=user, proposals=pending[:limit])


def tag_proposal_open_or_404(*, proposal_id: int, user: Any) -> Any:
    """The proposal a curation action is about; 404 (its existence not revealed) when ``user`` may
    not read it (``_proposal_open_to_q``)."""
    from moderation.tagging.models import TagProposal

    rows = TagProposal.objects.select_related("nearest_tag").filter(_proposal_open_to_q(user=user))
    return get_object_or_404(rows, pk=proposal_id)


def tag_proposal_for_display(*, proposal_id: int, user: Any) -> Any:
    """One proposal as a curation row draws it (``tag_proposals_pending``'s attributes), once decided with its
    ``merge_note`` (``tag_proposal_merge_note``)."""
    from moderation.tagging.models import TagProposal

    row = _with_sightings_open_to(user=user, proposals=TagProposal.objects.filter(pk=proposal_id))[0]
    row.merge_note = tag_proposal_merge_note(proposal=row)
    return row


SIGHTINGS_SHOWN = 3  # under each proposal in the queue; the rest a page at a time (``tag_proposal_sightings_page``)
SIGHTINGS_PAGE = 20


def _with_sightings_open_to(*, user: Any, proposals: QuerySet[Any]) -> list[Any]:
    """Each proposal with its latest ``SIGHTINGS_SHOWN`` sightings ``user`` may see (``open_sightings``), how many
    such sightings there are (``open_sightings_count``) and how many are hidden (``restricted_sightings``).

    A sighting of a video hidden from ``user`` (routed to a restricted review queue) is counted, never
    shown: its video id, title and the phrase the model wrote about it are that video's content. Only the
    shown sightings are loaded (a phrase seen on thousands of videos loaded every one of them)."""
    from django.db.models import Prefetch

    from moderation.media.selectors import video_open_to_q
    from moderation.tagging.models import TagProposalSighting

    open_q = video_open_to_q(user=user, field="video_id")
    sightings = TagProposalSighting.objects.filter(open_q).select_related("video").order_by("-created_at", "-pk")
    rows = list(
        proposals.select_related("nearest_tag").prefetch_related(
            Prefetch("sightings", queryset=sightings[:SIGHTINGS_SHOWN], to_attr="open_sightings")
        )
    )
    counts = (
        TagProposalSighting.objects.filter(proposal__in=[p.pk for p in rows])
        .order_by()
        .values("proposal_id")
        # An empty ``open_q`` (every video open to ``user``) negated is no filter either: nothing is hidden then.
        .annotate(
            shown=Count("pk", filter=open_q) if open_q else Count("pk"),
            hidden=Count("pk", filter=~open_q) if open_q else Value(0),
        )
    )
    by_proposal = {c["proposal_id"]: (int(c["shown"]), int(c["hidden"])) for c in counts}
    for row in rows:
        row.open_sightings_count, row.restricted_sightings = by_proposal.get(row.pk, (0, 0))
        row.more_sightings = max(0, row.open_sightings_count - len(row.open_sightings))
    return rows


def tag_proposal_sightings_page(*, proposal: Any, user: Any, page: str | int | None) -> Any:
    """One page (``SIGHTINGS_PAGE``, newest first) of the sightings of ``proposal`` that ``user`` may see
    (the curation row's "N more"). A phrase seen on thousands of videos: the rule is applied to a window of the
    proposal's newest sightings (``WindowPaginator``, index ``sighting_proposal_order``), counted as far as 1,000."""
    from moderation.media.selectors import video_open_to_q
    from moderation.tagging.models import TagProposalSighting
    from workbench.pagination import WindowPaginator

    sightings = TagProposalSighting.objects.filter(proposal=proposal)
    rows = (
        sightings.filter(video_open_to_q(user=user, field="video_id"))
        .select_related("video")
        .order_by("-created_at", "-pk")
    )
    return WindowPaginator(rows, SIGHTINGS_PAGE, window=sightings).get_page(page)


SHARED_WORDS_SHOWN = 50


def tag_words_shared(*, limit: int = SHARED_WORDS_SHOWN) -> dict[str, Any]:
    """Words (normalised, as a video's text is matched) that more than one active tag holds, as a name or an
    alias: left from before the word rule (``services._word_clash``) refused it, or from a database written
    around it. Each with its holders (``[(tag name, "name" | "alias")]``), the first ``limit`` by word, and
    how many there are. One aggregate over the vocabulary's index lines."""
    from django.db import connection

    sql = f"""
        WITH words AS (
            SELECT t.id, t.name, w.word, w.n
            FROM {Tag._meta.db_table} t,
                 unnest(string_to_array(t.search_text, E'\\n')) WITH ORDINALITY AS w(word, n)
            WHERE t.is_active
        ), shared AS (
            SELECT word FROM words GROUP BY word HAVING count(DISTINCT id) > 1
        )
        SELECT s.word, array_agg(w.name ORDER BY w.name, w.n), array_agg(w.n = 1 ORDER BY w.name, w.n),
               count(*) OVER ()
        FROM shared s JOIN words w USING (word)
        GROUP BY s.word ORDER BY s.word LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        rows = cursor.fetchall()
    words = []
    for word, names, is_name, _total in rows:
        holders: list[tuple[str, str]] = []
        for name, as_name in zip(names, is_name, strict=True):
            holder = (name, "name" if as_name else "alias")
            if holder not in holders:  # a tag whose alias is its own name once normalised
                holders.append(holder)
        words.append({"word": word, "holders": holders})
    return {"words": words, "total": rows[0][3] if rows else 0}


def tag_words_repeated(*, limit: int = SHARED_WORDS_SHOWN) -> dict[str, Any]:
    """Active tags holding one word twice: aliases that differ only in case or width ("Kitty", "kitty"), or an
    alias that is the tag's own name so, left from before imports and edits kept such a word once
    (``tagtext.alias_repeats``). Each with the word and its spellings in the tag's order (``[(spelling,
    "name" | "alias")]``, the first the one an edit keeps), the first ``limit`` by tag name, and how many there
    are. One aggregate over the vocabulary's index lines, as ``tag_words_shared``."""
    from django.db import connection

    sql = f"""
        WITH words AS (
            SELECT t.id, t.name, t.aliases, w.word, w.n
            FROM {Tag._meta.db_table} t,
                 unnest(string_to_array(t.search_text, E'\\n')) WITH ORDINALITY AS w(word, n)
            WHERE t.is_active
        )
        SELECT name, aliases, word, array_agg(n ORDER BY n), count(*) OVER ()
        FROM words GROUP BY id, name, aliases, word HAVING count(*) > 1
        ORDER BY name, min(n) LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        rows = cursor.fetchall()
    repeated = []
    for name, aliases, word, positions, _total in rows:
        # Line 1 of ``search_text`` is the name, line n the alias n - 1 (``services._index_fields``).
        spellings = [(name, "name") if n == 1 else (aliases[n - 2], "alias") for n in positions if n - 2 < len(aliases)]
        repeated.append({"tag": name, "word": word, "spellings": spellings})
    return {"words": repeated, "total": rows[0][4] if rows else 0}


def tag_proposal_merge_note(*, proposal: Any) -> str:
    """What a merged proposal that changed nothing says: the tag's word it already was ("“kitty” is already
    the alias “Kitty” of …"), or ``""``."""
    from moderation.tagging.models import TagProposal

    tag = proposal.tag
    if proposal.status != TagProposal.Status.MERGED or proposal.vocabulary_version_id is not None or tag is None:
        return ""
    held = tagtext.same_word(proposal.name, [tag.name, *tag.aliases])
    if held is None:
        return ""
    kind = "name" if held == tag.name else "alias"
    why = tagtext.ALIAS_REPEAT_WHY if kind == "alias" else "names match ignoring case and width"
    spelled = "" if held == proposal.name else f" ({why})"
    return f"“{proposal.name}” is already the {kind} “{held}” of “{tag.name}”{spelled}: the vocabulary is unchanged."


def tag_proposals_decided(*, user: Any, limit: int = 20) -> list[Any]:
    """The latest decided proposals ``user`` may read (a rejected phrase seen only on hidden videos stays
    unnamed, as a pending one)."""
    from moderation.tagging.models import TagProposal

    return list(
        TagProposal.objects.exclude(status=TagProposal.Status.PENDING)
        .filter(_proposal_open_to_q(user=user))
        .select_related("tag", "decided_by", "vocabulary_version")
        .order_by("-decided_at", "-pk")[:limit]
    )


VOCABULARY_PAGE = 50


def tag_vocabulary_page(*, query: str, page: str | int | None) -> dict[str, Any]:
    """What the vocabulary screen lists: the search's matches (inactive tags too, so a retired tag can be
    found and brought back), or the whole vocabulary a page at a time, most used first."""
    from django.core.paginator import Paginator

    rows = Tag.objects.select_related("parent").order_by("-accepted_count", "name")
    if query:
        found = [t.pk for t in tag_search(query=query, limit=VOCABULARY_PAGE + 1, include_inactive=True)]
        by_pk = rows.in_bulk(found[:VOCABULARY_PAGE])
        return {"tags": [by_pk[pk] for pk in found[:VOCABULARY_PAGE]], "more_matches": len(found) > VOCABULARY_PAGE}
    page_obj = Paginator(rows, VOCABULARY_PAGE).get_page(page)
    return {"tags": list(page_obj.object_list), "page_obj": page_obj}


IMPORT_PROBLEMS_SHOWN = 50


def tag_embedding_stopped() -> dict[str, Any]:
    """Active tags the last ``embed_tags`` run left without an embedding (they are left out of suggestions), and
    why (``Tag.embedding_error``, e.g. the media queue's time limit); ``waiting`` 0 when none is."""
    stopped = Tag.objects.filter(is_active=True, embedding__isnull=True).exclude(embedding_error="")
    first = stopped.order_by("pk").values_list("embedding_error", flat=True).first()
    return {"waiting": stopped.count(), "error": first or ""}


def tag_imports_recent(*, limit: int = 5) -> dict[str, Any]:
    """The latest vocabulary imports sent from the screen (without their file bytes), newest first,
    each with the first ``IMPORT_PROBLEMS_SHOWN`` skipped lines and notes, and whether any is still open."""
    rows = list(TagImport.objects.defer("content").select_related("requested_by", "version")[:limit])
    now = timezone.now()
    for row in rows:
        row.problems_shown = row.problems[:IMPORT_PROBLEMS_SHOWN]  # type: ignore[attr-defined]
        row.problems_more = max(0, len(row.problems) - IMPORT_PROBLEMS_SHOWN)  # type: ignore[attr-defined]
        row.notes_shown = row.notes[:IMPORT_PROBLEMS_SHOWN]  # type: ignore[attr-defined]
        row.notes_more = max(0, len(row.notes) - IMPORT_PROBLEMS_SHOWN)  # type: ignore[attr-defined]
        row.stalled = row.is_stalled(now=now)  # type: ignore[attr-defined]
    return {
        "rows": rows,
        "open": any(r.is_open for r in rows),
        "stalled": any(r.stalled for r in rows),  # type: ignore[attr-defined]
    }


def tag_queue_counts(*, queue: Any, user: Any) -> dict[str, int]:
    """The tags queue's items by status, as ``user`` can work them: only items whose video is open to them
    (``video_open_to_q``, the rule "Claim next" applies). It counted every item, so a moderator read "3 waiting"
    and "Claim next" answered that the queue is empty (those were videos restricted after their item was made)."""
    from moderation.media.selectors import video_open_to_q
    from moderation.review.models import ReviewTask

    statuses = (ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED, ReviewTask.Status.DONE)
    items = ReviewTask.objects.filter(queue=queue, status__in=statuses)
    rows = items.filter(video_open_to_q(user=user, field="decision__video_id")).values("status").annotate(n=Count("pk"))
    found = {row["status"]: row["n"] for row in rows}
    return {status: found.get(status, 0) for status in statuses}
