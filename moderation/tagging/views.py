"""Tag review screens: the tags queue, one claimed item, the tags panel (also on the moderation
review screen), type-ahead search, the ranker page, the vocabulary and its curation queue."""

from __future__ import annotations

import time
from typing import Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from moderation.errors import ModerationError, StaleEditError
from moderation.media.models import Video
from moderation.media.selectors import video_open_to_q, videos_open_to
from moderation.media.services import video_media_verify
from moderation.media.shield import media_revealed
from moderation.review.models import ReviewQueue, ReviewTask
from moderation.review.selectors import (
    HELD_HIDDEN_TEXT,
    QUEUE_NOT_OPEN_TEXT,
    review_held_display,
    review_held_hidden_counts,
    review_nothing_to_claim_text,
    review_queue_may_work,
    review_task_open_for,
)
from moderation.review.services import review_claim_next, review_release_hidden
from moderation.review.views import claimed_by_another
from moderation.tagging import selectors, services
from moderation.tagging import text as tagtext
from moderation.tagging.files import MAX_FILE_BYTES
from moderation.tagging.models import TAG_SET_DESCRIPTION_MAX_CHARS, Tag, TagRankerTraining, TagSet
from workbench.form_routes import post_only, post_only_to
from workbench.roles import Perm, permission_required
from workbench.text import row_id

# A tag set form's fields, in the order the form shows them (the first with a problem takes the focus).
TAG_SET_FIELDS = (
    "slug",
    "name",
    "description",
    "show_threshold",
    "preselect_threshold",
    "max_suggestions",
    "tags",
    "is_default",
)
NEW_TAG_SET_VALUES = {"show_threshold": "0.05", "preselect_threshold": "0.9", "max_suggestions": "12"}
TAG_SET_SAVED_KEY = "tag_set_saved"  # session: the set the last save confirmed, shown once in its form
TAG_SAVED_KEY = "tag_saved"  # session: the vocabulary row the last save confirmed, shown once beside it


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _tag_set(request: HttpRequest) -> TagSet:
    slug = request.GET.get("set") or request.POST.get("set")
    if slug:
        found = TagSet.objects.filter(slug=slug).first()
        if found is not None:
            return found
    return services.tag_set_default()


def _ids(values: list[str]) -> list[int]:
    return [i for i in map(row_id, values) if i is not None]


def _ranked_with(raw: str | None) -> services.RankedWith | None:
    """The ranker the tags panel was drawn with: its id, "" for the weighted sum; None when the form sent no such
    field (drawn before it existed, or with no chip) or not an id: then the suggestions' own ranker is named."""
    if raw is None:
        return None
    if raw == "":
        return services.RankedWith(ranker_id=None)
    ranker_id = row_id(raw)
    return services.RankedWith(ranker_id=ranker_id) if ranker_id is not None else None


@permission_required(Perm.REVIEW_VIDEO)
def tag_queue(request: HttpRequest) -> HttpResponse:
    queue = services.tag_queue_default()
    if not review_queue_may_work(user=_user(request), queue=queue):
        raise Http404(QUEUE_NOT_OPEN_TEXT)  # restricted to groups by an admin: as its claim, and a review queue's page
    counts = selectors.tag_queue_counts(queue=queue, user=request.user)
    return render(
        request,
        "moderation/tagging/queue.html",
        {
            "queue": queue,
            # The item this reviewer holds here, as the review queues say it ("You hold video … — continue").
            "held": review_held_display(task=review_task_open_for(user=_user(request), queue=queue)),
            # An item held here whose video was hidden from them since (as the review queues say it): "Claim next"
            # hands it back, so the page says why it has nothing to continue.
            "held_hidden": review_held_hidden_counts(user=_user(request)).get(queue.pk, 0),
            "counts": counts,
            "tag_sets": TagSet.objects.all(),
            "tag_set": _tag_set(request),
            # An empty queue with an empty vocabulary stays empty: the page says where tags come from.
            "has_vocabulary": Tag.objects.filter(is_active=True).exists(),
            "ranked_by": selectors.tag_ranker_description(ranker=selectors.tag_ranker_active()),
        },
    )


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def tag_claim_next(request: HttpRequest) -> HttpResponse:
    queue = services.tag_queue_default()
    if not review_queue_may_work(user=_user(request), queue=queue):
        # Restricted to groups by an admin: refused as a restricted review queue's URL is, without its name (the
        # claim's own refusal says "You may not work the queue “…”").
        raise Http404(QUEUE_NOT_OPEN_TEXT)
    # As on the review queues: an item held whose video was hidden since is handed back, and said.
    for hidden in review_release_hidden(user=_user(request), queues=[queue]):
        messages.info(
            request, f"{HELD_HIDDEN_TEXT.format(queue=hidden.queue.name)} It was handed back to that queue's reviewers."
        )
    try:
        task = review_claim_next(user=_user(request), queue=queue)
    except ModerationError as exc:
        raise PermissionDenied(str(exc)) from exc
    if task is None:
        # As the review queues say it: items left that are the reviewer's own uploads are not an empty queue.
        messages.info(request, review_nothing_to_claim_text(queues=[queue], user=_user(request)))
        return redirect("moderation:tag_queue")
    return redirect(reverse("moderation:tag_task", args=[task.pk]) + f"?set={_tag_set(request).slug}")


def _task(request: HttpRequest, pk: int) -> ReviewTask:
    """A tags-queue item, 404 when its video is hidden from the user (a restricted queue's content)."""
    tasks = ReviewTask.objects.filter(video_open_to_q(user=request.user, field="decision__video_id"))
    return get_object_or_404(tasks.select_related("decision__video", "queue"), pk=pk, queue__kind=ReviewQueue.Kind.TAGS)


def _video(request: HttpRequest, video_id: int) -> Video:
    return get_object_or_404(videos_open_to(user=request.user), pk=video_id)


@never_cache  # as the review screen: Back after a release or a verdict loads the item afresh
@permission_required(Perm.REVIEW_VIDEO)
def tag_task(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    if task.status == ReviewTask.Status.CLAIMED and task.claimed_by_id != request.user.pk:
        raise PermissionDenied(claimed_by_another(task))
    video = task.decision.video
    context = {
        "task": task,
        "video": video,
        "segments": services.video_segments(video),
        # A stored file gone from media storage is said (and recorded) as on the review screen.
        "media_check": video_media_verify(video=video, by=_user(request)),
        "panel": selectors.tag_panel_for(video_id=video.pk, tag_set=_tag_set(request)),
        "recorded": selectors.tag_task_recorded(task=task),
        "standalone": True,
        "tag_sets": TagSet.objects.all(),
        # Shielded (blurred, greyscale) until revealed, as on every other screen a reviewer works.
        "reveal": media_revealed(request),
    }
    return render(request, "moderation/tagging/task.html", context)


@permission_required(Perm.REVIEW_VIDEO)
def tag_panel(request: HttpRequest, video_id: int) -> HttpResponse:
    """The tags panel as an htmx fragment (the moderation review screen loads it)."""
    video = _video(request, video_id)
    context = {"video": video, "panel": selectors.tag_panel_for(video_id=video.pk, tag_set=_tag_set(request))}
    return render(request, "moderation/tagging/_panel.html", context)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def tag_submit(request: HttpRequest, video_id: int) -> HttpResponse:
    """Record the reviewer's tags. From the tags queue (``task``): then claim and show the next item."""
    video = _video(request, video_id)
    tag_set = _tag_set(request)
    raw_task = request.POST.get("task", "")
    task_id = row_id(raw_task)
    if raw_task and task_id is None:
        raise Http404("No such tag item.")
    task = _task(request, task_id) if task_id is not None else None
    try:
        result = services.tags_review_submit(
            video_id=video.pk,
            user=_user(request),
            selected=_ids(request.POST.getlist("tag")),
            shown=_ids(request.POST.getlist("shown")),
            preselected=_ids(request.POST.getlist("preselected")),
            task=task,
            tag_set=tag_set,
            # The video's tags as the panel showed them (a form drawn before this field sends none: not checked).
            seen=_ids(request.POST.getlist("seen")) if request.POST.get("seen_sent") else None,
            ranked_with=_ranked_with(request.POST.get("ranked_with")),
        )
    except ModerationError as exc:
        if task is not None:
            messages.error(request, str(exc))
            if isinstance(exc, services.StaleTagsError):  # still theirs: the item again, with the tags as they are
                return redirect(reverse("moderation:tag_task", args=[task.pk]) + f"?set={tag_set.slug}")
            return redirect("moderation:tag_queue")
        context = {"video": video, "panel": selectors.tag_panel_for(video_id=video.pk, tag_set=tag_set), "error": exc}
        return render(request, "moderation/tagging/_panel.html", context, status=409)
    summary = (
        f"Tags saved: {len(result.accepted)} accepted, {len(result.rejected)} rejected, {len(result.added)} added."
    )
    if task is None:
        context = {
            "video": video,
            "panel": selectors.tag_panel_for(video_id=video.pk, tag_set=tag_set),
            "saved": summary,
        }
        return render(request, "moderation/tagging/_panel.html", context)
    # Said on the next item's screen: which item's tags these were, or it read as about the video shown.
    messages.success(
        request, summary.replace("Tags saved:", f"Tags of video #{video.pk} “{video.title or '(untitled)'}” saved:", 1)
    )
    nxt = review_claim_next(user=_user(request), queue=task.queue)
    if nxt is None:
        messages.info(request, "The tags queue is empty.")
        return redirect("moderation:tag_queue")
    return redirect(reverse("moderation:tag_task", args=[nxt.pk]) + f"?set={tag_set.slug}")


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def tag_try_again(request: HttpRequest, video_id: int) -> HttpResponse:
    """The tags panel's "Try again" of a tag task given up after its lost tries: the panel again, saying so (409
    with the reason when there was nothing to try again). Without htmx: back to the video's page with a message."""
    video = _video(request, video_id)
    try:
        done, error = (
            services.tag_try_again(video_id=video.pk, kind=request.POST.get("kind", ""), user=_user(request)),
            "",
        )
    except ModerationError as exc:
        done, error = "", str(exc)
    if not request.htmx:  # type: ignore[attr-defined]
        (messages.success if done else messages.error)(request, done or error)
        return redirect("moderation:video_detail", pk=video.pk)
    panel = selectors.tag_panel_for(video_id=video.pk, tag_set=_tag_set(request))
    context = {"video": video, "panel": panel, "saved": done, "error": error}
    return render(request, "moderation/tagging/_panel.html", context, status=409 if error else 200)


@permission_required(Perm.REVIEW_VIDEO, Perm.EDIT_POLICY)
def tag_search(request: HttpRequest) -> HttpResponse:
    """Type-ahead over the vocabulary (an htmx fragment; the server time is in a header): the tag set's tags
    as buttons that add a chip (the tags panel), or with ``scope=vocabulary`` every active tag as options to
    pick (the curation screen's "alias of" box). An empty query answers how many tags there are to search; opened
    without htmx (in the browser) the search is a page of its own with its own search box."""
    started = time.perf_counter()
    query = request.GET.get("q", "").strip()  # a space typed alone is no search ("No tag matches “ ”")
    pick = request.GET.get("scope") == "vocabulary"
    tag_set = None if pick else _tag_set(request)
    # The tags panel sends its video: the ranker's suggestions for it rank above the rest of the vocabulary.
    video = request.GET.get("video", "")
    found = selectors.tag_search_ranked(
        query=query,
        tag_set=tag_set,
        # ``row_id``: "²" passed ``str.isdigit()`` and ``int()`` refused it, as it did 5,000 digits (a 500).
        video_id=None if pick else row_id(video),
        videos_visible=videos_open_to(user=request.user),
    )
    context = {"tags": found.tags, "total": found.total, "q": query, "pick": pick, "tag_set": tag_set}
    if not query:  # the box cleared, or the address opened bare: say what there is to search
        context["searchable"] = selectors.tag_search_count(tag_set=tag_set)
    # Opened in the browser (a bookmark, a link, the fragment's address): a page of its own, not a bare list.
    template = "_search.html" if request.htmx else "search.html"  # type: ignore[attr-defined]
    response = render(request, f"moderation/tagging/{template}", context)
    response["Server-Timing"] = f"search;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


@permission_required(Perm.REVIEW_VIDEO)
def tag_ranker(request: HttpRequest) -> HttpResponse:
    """The active ranker, its weights, its training runs and its versions. While a run is queued or running its
    table is polled (htmx); once none is, the whole page reloads (the new ranker, its weights)."""
    if request.htmx and request.GET.get("part") == "runs":  # type: ignore[attr-defined]
        runs = selectors.tag_ranker_runs()
        response = render(request, "moderation/tagging/ranker.html#runs", runs)
        if not runs["follow"]:
            response["HX-Refresh"] = "true"
        return response
    return render(request, "moderation/tagging/ranker.html", selectors.tag_ranker_overview())


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def tag_ranker_train(request: HttpRequest) -> HttpResponse:
    """Record a training run and queue it (default queue); the page's runs table says its state and follows it.
    No flash message: one saying "queued" outlived the run it was about."""
    services.tag_ranker_training_request(trigger=TagRankerTraining.Trigger.PAGE, by=_user(request))
    return redirect(reverse("moderation:tag_ranker") + "#ranker-runs")


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def tag_ranker_activate(request: HttpRequest, pk: int) -> HttpResponse:
    """Make an earlier ranker version active again (a rollback)."""
    try:
        ranker = services.tag_ranker_activate(ranker_id=pk, by=_user(request))
    except ModerationError as exc:
        messages.error(request, f"Nothing changed: {exc}")
    else:
        messages.success(
            request,
            f"Ranker v{ranker.version} is active again; the suggestions of videos not yet tagged were re-scored by it.",
        )
    return redirect("moderation:tag_ranker")


@permission_required(Perm.EDIT_POLICY)
def tag_vocabulary(request: HttpRequest) -> HttpResponse:
    imports = selectors.tag_imports_recent()
    if request.htmx and request.GET.get("part") == "imports":  # type: ignore[attr-defined]
        # Polled while an import is queued or running.
        return render(request, "moderation/tagging/vocabulary.html#imports", {"imports": imports})
    # A tag set just saved says so beside its own form (the redirect lands there, far below the
    # page's messages); popped, so a reload does not say it again.
    saved = request.session.pop(TAG_SET_SAVED_KEY, None)
    context = _vocabulary_context(request, imports=imports, saved_set=saved)
    # So is a tag's row (the redirect lands on it, maybe a screenful below the messages); a row no longer
    # listed here (renamed out of the search) says it among the messages.
    saved_tag = request.session.pop(TAG_SAVED_KEY, None)
    if saved_tag:
        row = next((t for t in context["tags"] if t.pk == saved_tag["pk"]), None)
        if row is not None:
            row.saved = saved_tag
        else:
            (messages.error if saved_tag.get("refused") else messages.success)(request, saved_tag["text"])
    return render(request, "moderation/tagging/vocabulary.html", context)


def _vocabulary_context(
    request: HttpRequest,
    *,
    imports: dict[str, Any] | None = None,
    query: str | None = None,
    page: str | None = None,
    edited_tag: tuple[Tag, dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The vocabulary screen's context: the search or page of the list (the request's, or those a row's
    form sent), with ``edited_tag``'s row (a tag and what was typed in its row) showing the typed values."""
    q = (request.GET.get("q", "") if query is None else query).strip()[:100]
    listed = selectors.tag_vocabulary_page(query=q, page=request.GET.get("page") if page is None else page)
    if edited_tag is not None:
        tag, typed = edited_tag
        rows = listed["tags"]
        at = next((i for i, row in enumerate(rows) if row.pk == tag.pk), None)
        if at is None:  # moved off this page or out of the search meanwhile: shown first, not lost
            rows.insert(0, tag)
            at = 0
        rows[at].typed = typed
    new_typed = extra.get("new_set_typed")
    return {
        "imports": imports if imports is not None else selectors.tag_imports_recent(),
        "tag_sets": _tag_set_forms(extra.pop("edited_set", None), saved=extra.pop("saved_set", None)),
        "new_set": {
            "values": new_typed or NEW_TAG_SET_VALUES,
            "error": new_typed["error"] if new_typed else "",
            "errors": new_typed["errors"] if new_typed else {},
            "focus": _first_refused(new_typed["errors"]) if new_typed else "",
        },
        **listed,
        "q": q,
        "count": Tag.objects.count(),
        "embedding": selectors.tag_embedding_stopped(),
        # As the curation screen counts them for this editor (those seen only on hidden videos apart).
        "pending": selectors.tag_curation_counts(user=request.user)["pending"],
        "description_max": TAG_SET_DESCRIPTION_MAX_CHARS,
        **extra,
    }


def _tag_set_forms(edited: dict[str, Any] | None, *, saved: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One edit form per tag set: its stored values, except a refused edit's set, which shows what was
    typed and why it was refused (``edited`` holds the posted fields, the summary ``error`` and each
    field's problems, ``errors``); the set just saved
    (``saved``: its slug and the confirmation) says so in its own form."""
    forms = []
    for ts in TagSet.objects.prefetch_related("tags"):
        if edited is not None and edited["slug"] == ts.slug:
            errors = edited["errors"]
            forms.append(
                {
                    "set": ts,
                    "values": edited,
                    "error": edited["error"],
                    "errors": errors,
                    "focus": _first_refused(errors),
                }
            )
            continue
        values = {
            "name": ts.name,
            "description": ts.description,
            "show_threshold": ts.show_threshold,
            "preselect_threshold": ts.preselect_threshold,
            "max_suggestions": ts.max_suggestions,
            "tags": ", ".join(t.name for t in ts.tags.all()),
            "is_default": "on" if ts.is_default else "",
        }
        done = saved["text"] if saved is not None and saved.get("slug") == ts.slug else ""
        forms.append({"set": ts, "values": values, "error": "", "errors": {}, "focus": "", "saved": done})
    return forms


def _first_refused(errors: dict[str, list[str]]) -> str:
    """The field the refused form opens on: the first, in the form's order, with a problem."""
    return next((name for name in TAG_SET_FIELDS if errors.get(name)), "")


@post_only
@permission_required(Perm.EDIT_POLICY)
def tag_import(request: HttpRequest) -> HttpResponse:
    """Queue an import of tags, or parents, from an uploaded file or pasted lines (the formats of
    ``import_tags``) on the default queue; the screen shows its state, then every skipped line."""
    upload = request.FILES.get("file")
    try:
        if upload is not None:
            if (upload.size or 0) > MAX_FILE_BYTES:
                raise ModerationError(
                    f"{upload.name} is {upload.size:,} bytes; a vocabulary file has at most {MAX_FILE_BYTES:,}."
                )
            content, source = upload.read(), upload.name or "uploaded file"
        else:
            content, source = request.POST.get("lines", "").encode(), "typed lines"
        job, queued = services.tag_import_request(
            kind=request.POST.get("kind", "tags"), content=content, source_name=source, user=_user(request)
        )
    except ModerationError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("moderation:tag_vocabulary") + "#vocabulary-import")
    if queued:
        messages.success(request, f"The import of {job.source_name} is queued; this page shows when it is done.")
    else:
        messages.info(
            request,
            f"{job.source_name} is already being imported ({job.get_status_display()}): it was not queued twice.",
        )
    return redirect(reverse("moderation:tag_vocabulary") + "#vocabulary-import")


@post_only_to("moderation:tag_vocabulary")
@permission_required(Perm.EDIT_POLICY)
def tag_set_save(request: HttpRequest) -> HttpResponse:
    """Create or change a tag set (a business line's tags, show / pre-select thresholds) from the
    vocabulary screen. Refused, the form comes back with what was typed and every problem beside its
    field (``services.TagSetInvalid``), and nothing is saved."""
    post = request.POST
    slug = post.get("slug", "").strip()
    try:
        tag_set = services.tag_set_save(
            slug=slug,
            name=post.get("name", ""),
            description=post.get("description", ""),
            show_threshold=post.get("show_threshold", ""),
            preselect_threshold=post.get("preselect_threshold", ""),
            max_suggestions=post.get("max_suggestions", ""),
            tag_names=post.get("tags", "").replace("，", ",").split(","),
            is_default=post.get("is_default") == "on",
            create=post.get("create") == "1",
            user=_user(request),
        )
    except ModerationError as exc:
        errors = exc.errors if isinstance(exc, services.TagSetInvalid) else {"": [str(exc)]}
        count = sum(len(found) for name, found in errors.items() if name)
        parts = list(errors.get("", []))  # about the set as a whole: no field to say it beside
        if count:
            parts.append(
                f"{count} problems, each said beside its field." if count > 1 else "one problem, said beside its field."
            )
        summary = f"Tag set “{slug[:50] or '(new)'}” was not saved: " + " ".join(parts)
        # What was typed is shown again in the form it was typed in, not lost.
        typed = {k: post.get(k, "") for k in TAG_SET_FIELDS}
        refused = {**typed, "error": summary, "errors": errors}
        if post.get("create") == "1":
            # Beside the new set's form, far down the page (at the page's top, over the vocabulary table,
            # the admin read it and had to scroll to the form for what to fix), as an edited set's is.
            context = _vocabulary_context(request, new_set_typed=refused)
            return render(request, "moderation/tagging/vocabulary.html", context, status=400)
        if TagSet.objects.filter(slug=slug).exists():  # the refusal is said beside the set's own form
            context = _vocabulary_context(request, edited_set=refused)
            return render(request, "moderation/tagging/vocabulary.html", context, status=400)
        messages.error(request, f"Tag set “{slug[:50]}” was not saved: {exc}")  # gone: no form to keep them in
    else:
        count = tag_set.tags.count()
        offered = "every active tag" if not count else f"{count} tag{'' if count == 1 else 's'}"
        request.session[TAG_SET_SAVED_KEY] = {
            "slug": tag_set.slug,
            "text": f"Saved tag set “{tag_set.name}” ({offered}).",
        }
        # Back to the saved set's own form, where the confirmation is.
        return redirect(reverse("moderation:tag_vocabulary") + f"#tag-set-{tag_set.slug}")
    return redirect(reverse("moderation:tag_vocabulary") + "#tag-sets")


@permission_required(Perm.EDIT_POLICY)
def tag_curation(request: HttpRequest) -> HttpResponse:
    """The vocabulary-curation queue: free-text VLM tags that matched no vocabulary tag closely enough."""
    vlm_model, vlm_problem = selectors.tag_vlm_model_and_problem()
    context = {
        "proposals": selectors.tag_proposals_pending(user=request.user),
        **selectors.tag_curation_counts(user=request.user),
        "shared": selectors.tag_words_shared(),
        "repeated": selectors.tag_words_repeated(),
        "decided": selectors.tag_proposals_decided(user=request.user),
        "vlm_model": vlm_model,
        "vlm_problem": vlm_problem,
        "threshold": settings.TAG_VLM_SNAP_THRESHOLD,
    }
    return render(request, "moderation/tagging/curation.html", context)


@post_only
@permission_required(Perm.EDIT_POLICY)
def tag_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename, set aliases, parent (by name; empty = none) or active flag: a new vocabulary version.

    Saved, it goes back to the same search or page of the list. Refused, the same screen is drawn again
    with this row as it was typed and the reason beside it (the redirect used to reload the stored row:
    the editor's typing was gone), except when someone else changed the tag meanwhile: then the row as it
    is now, which is what the refusal asks them to edit again."""
    tag = get_object_or_404(Tag, pk=pk)
    query = request.POST.get("q", "")[:100]
    page = request.POST.get("page", "")[:10]
    parent_name = request.POST.get("parent", "").strip()
    parent: Tag | None = None
    try:
        if parent_name:
            parent = selectors.tag_named_or_aliased(word=parent_name)
            if parent is None:
                raise services.TagFieldError(
                    f"“{parent_name[:100]}” is not a tag. Type the name of a tag or one of its aliases.", field="parent"
                )
        aliases = [a for a in request.POST.get("aliases", "").split(",") if a.strip()]
        services.tag_update(
            tag=tag,
            user=_user(request),
            name=request.POST.get("name", tag.name),
            aliases=aliases,
            parent=parent,
            is_active=request.POST.get("is_active") == "on",
            seen_token=request.POST.get("seen"),
        )
        saved = f"Saved “{request.POST.get('name', tag.name)}”."
        if parent is not None and parent.name != parent_name:  # typed as an alias: say which tag it stands for
            saved = f"Saved “{request.POST.get('name', tag.name)}” under “{parent.name}” (“{parent_name[:100]}” is its alias)."
        _kept, repeats = tagtext.alias_repeats(dict.fromkeys(a.strip() for a in aliases))
        if repeats:  # "Kitty, kitty": one alias kept; say which spelling was left out
            said = ", ".join(
                f"“{alias}” {'is ' if i == 0 else ''}the alias “{first}” again"
                for i, (alias, first) in enumerate(repeats)
            )
            saved += f" {said} ({tagtext.ALIAS_REPEAT_WHY}): kept once."
        request.session[TAG_SAVED_KEY] = {"pk": tag.pk, "text": saved}
    except StaleEditError as exc:  # the row as it is now, with why beside it
        request.session[TAG_SAVED_KEY] = {"pk": tag.pk, "text": f"“{tag.name}” was not saved: {exc}", "refused": True}
    except ModerationError as exc:
        # Several rows share the screen: say which one was not saved, beside it, with what was typed.
        typed = {
            "name": request.POST.get("name", tag.name),
            "aliases": request.POST.get("aliases", ""),
            "parent": request.POST.get("parent", ""),
            "is_active": request.POST.get("is_active") == "on",
            "error": f"“{tag.name}” was not saved: {exc}",
            # The box at fault is the one marked and focused (a mistyped parent focused the name box).
            "field": exc.field if isinstance(exc, services.TagFieldError) else "name",
        }
        context = _vocabulary_context(request, query=query, page=page, edited_tag=(tag, typed))
        return render(request, "moderation/tagging/vocabulary.html", context, status=400)
    # Back to the same search (the query encoded, so "&" or "#" in it stays part of it) or page, at the row
    # just edited: the list used to open at its top, the saved row a few screens below out of sight.
    back = {"q": query} if query.strip() or not page else {"page": page}
    return redirect(reverse("moderation:tag_vocabulary") + "?" + urlencode(back) + f"#tag-row-{tag.pk}")


def _tag_named_or_aliased(word: str, what: str) -> tuple[Tag | None, str]:
    """The tag a curation box names (``selectors.tag_named_or_aliased``: its name, or one of its aliases in any case
    or width, as the vocabulary's parent box takes it), and how the outcome says a word taken as an alias; "" for an
    empty box. The boxes took names only, and the demo vocabulary's names are Chinese, its aliases English: "food"
    for 美食 was "not a tag in the vocabulary"."""
    word = word.strip()
    if not word:
        return None, ""
    tag = selectors.tag_named_or_aliased(word=word)
    if tag is None:
        raise ModerationError(
            f"{what} “{word[:100]}” is not a tag in the vocabulary. Type the name of a tag or one of its aliases."
        )
    if tag.name == word:
        return tag, ""
    if what == "Parent":  # the new tag's parent: which tag the outcome's tag went under
        return tag, f"Parent: “{tag.name}” (“{word[:100]}” is its alias)"
    return tag, f"“{word[:100]}” is an alias of “{tag.name}”"


@post_only_to("moderation:tag_curation")
@permission_required(Perm.EDIT_POLICY)
def tag_proposal_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept (optionally renamed, under a parent), merge as an alias of a tag, or reject a proposal.
    From the curation screen (htmx) the proposal's row is redrawn with the outcome or the reason."""
    proposal = selectors.tag_proposal_open_or_404(proposal_id=pk, user=request.user)
    action = request.POST.get("action", "")
    error = ""
    # A refused decision's form shows what was typed again, the reason beside it (it showed the defaults).
    typed = {key: request.POST.get(key, "")[:100] for key in ("name", "parent", "target") if key in request.POST}
    taken_as = ""  # a box's word taken as another tag's alias, said with the outcome
    try:
        # A field the editor emptied is refused, not replaced by the proposal's own name or its nearest
        # tag (an emptied "alias of" made the phrase an alias of the nearest tag without a word).
        if action == "merge" and "target" in request.POST and not request.POST["target"].strip():
            raise ModerationError("Alias of: nothing typed; type the tag this phrase is another word for.")
        if action == "accept" and "name" in request.POST and not request.POST["name"].strip():
            raise ModerationError("Tag name: nothing typed; type the name the new tag gets.")
        target = parent = None
        if action == "merge":
            target, taken_as = _tag_named_or_aliased(request.POST.get("target", ""), "Alias of")
        elif action == "accept":
            parent, taken_as = _tag_named_or_aliased(request.POST.get("parent", ""), "Parent")
        proposal = services.tag_proposal_decide(
            proposal=proposal,
            user=_user(request),
            action=action,
            name=request.POST.get("name", "") if action == "accept" else "",
            target=target,
            parent=parent,
        )
    except ModerationError as exc:
        error = str(exc)
    if request.htmx:  # type: ignore[attr-defined]
        proposal = selectors.tag_proposal_for_display(proposal_id=proposal.pk, user=request.user)
        context = {
            "p": proposal,
            "error": error,
            "failed": action if error else "",
            "typed": typed if error else {},
            "taken_as": "" if error else taken_as,
            "oob": True,
            **selectors.tag_curation_counts(user=request.user),
        }
        row = render(request, "moderation/tagging/curation.html#row", context).content
        count = render(request, "moderation/tagging/curation.html#pending", context).content
        return HttpResponse(row + count)
    if error:
        messages.error(request, error)
    else:
        note = selectors.tag_proposal_merge_note(proposal=proposal)
        said = [
            f"“{proposal.name}”: {proposal.get_status_display().lower()}.",
            f"{taken_as}." if taken_as else "",
            note,
        ]
        messages.success(request, " ".join(part for part in said if part))
    return redirect("moderation:tag_curation")


@permission_required(Perm.EDIT_POLICY)
def tag_proposal_sightings(request: HttpRequest, pk: int) -> HttpResponse:
    """A page of a proposal's sightings (the videos whose model answer proposed it) that the editor may see:
    the curation row's "N more" (htmx: the row's list, paged), or a page of its own without htmx."""
    proposal = selectors.tag_proposal_open_or_404(proposal_id=pk, user=request.user)
    if request.htmx and request.GET.get("fewer"):  # type: ignore[attr-defined]
        shown = selectors.tag_proposal_for_display(proposal_id=proposal.pk, user=request.user)
        return render(request, "moderation/tagging/curation.html#sightings", {"p": shown})
    page = selectors.tag_proposal_sightings_page(proposal=proposal, user=request.user, page=request.GET.get("page"))
    context = {"p": proposal, "page": page}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "moderation/tagging/curation.html#sightings_page", context)
    return render(request, "moderation/tagging/sightings.html", context)
