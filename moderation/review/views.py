"""Review screens: the queue, one claimed item, and the verdict / skip / release / reveal actions."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from moderation.actions import video_action
from moderation.errors import ModerationError
from moderation.inference.services import decision_rerun_request
from moderation.media.models import Video
from moderation.media.selectors import video_open_or_404
from moderation.media.services import video_media_verify
from moderation.media.shield import REVEAL_SESSION_KEY, media_revealed
from moderation.review import selectors, services
from moderation.review.models import Review, ReviewQueue, ReviewTask
from workbench.form_routes import post_only
from workbench.metrics import REVIEW_CLAIM_SECONDS, REVIEW_SUBMIT_SECONDS
from workbench.roles import Perm, login_required, permission_required
from workbench.text import shown_text


def _user(request: HttpRequest) -> User:
    # The permission decorator already turned anonymous users away.
    return cast(User, request.user)


def _refused(request: HttpRequest, task: ReviewTask, exc: ModerationError) -> ReviewTask | None:
    """Show why the service refused; the task to stay on if it is still this reviewer's, else None."""
    decided = selectors.review_decided_by_you_text(task=task, user=_user(request)) if _already(exc) else None
    messages.error(request, decided or str(exc))
    if not ReviewTask.objects.filter(pk=task.pk).exists():
        return None  # removed meanwhile (a gold item given back in another tab, its video deleted)
    task.refresh_from_db()
    return task if task.is_held_by(request.user) else None


def _recorded_text(review: Review, task: ReviewTask) -> str:
    """What a decision recorded, in words: it read "Recorded approve model verdict (正向, severity none) for item #5."
    (the verdict's button text as a verb, and a severity "none" the non-violative label always has)."""
    severity = f", severity {review.severity}" if review.severity and review.severity != "none" else ""
    if review.verdict == Review.Verdict.OVERRIDE:
        return f"Recorded for item #{task.pk}: label overridden to {review.label}{severity}."
    return f"Recorded for item #{task.pk}: approved the model verdict ({review.label}{severity})."


def _already(exc: ModerationError) -> bool:
    return str(exc) == services.ALREADY_REVIEWED


def _go_to(task: ReviewTask | None) -> HttpResponse:
    if task is None:
        return redirect("moderation:queue")
    return redirect("moderation:review_task", pk=task.pk)


@permission_required(Perm.REVIEW_VIDEO)
def queue(request: HttpRequest) -> HttpResponse:
    """Every queue this reviewer may work, with its load, SLA breaches and handling time."""
    queues = list(selectors.review_queues_for(user=_user(request)))
    overview = selectors.review_queue_overview_recent(queues=queues)
    # Each queue's row names the item this reviewer holds there (they may hold one in several queues); the
    # earliest of them is the one "n" goes back to, a moderation queue's before a tags queue's: a moderator holding a
    # tag item claimed earlier pressed "n" here to go on moderating and landed on the tag screen, where the digits and
    # Enter they typed next ticked a chip and submitted that video's tags (walk hwalk22).
    held = selectors.review_tasks_open_for(user=_user(request))
    open_task = min(
        held.values(),
        key=lambda t: (t.queue.kind != ReviewQueue.Kind.MODERATION, t.claimed_at, t.pk),
        default=None,
    )
    claim = _claim_rows(
        user=_user(request), queues=queues, claimable={pk for pk, s in overview.items() if s["claimable"]}, held=held
    )
    rows = [{**row, "stats": overview[row["queue"].pk]} for row in claim["rows"]]
    own_uploads, left_to_others = claim["own_uploads"], claim["left_to_others"]
    listed = {q.pk for q in queues}
    context = {
        "rows": rows,
        "as_of": min((s["as_of"] for s in overview.values()), default=None),
        "hotkey_queue": _hotkey_queue(rows, open_task),
        "own_uploads_only": bool(own_uploads),
        "worked_before_only": any(w["worked"] for w in left_to_others.values()),
        "open_task": open_task,
        # Held in a queue the list no longer shows (switched off since): still theirs, still to continue.
        "held_elsewhere": [selectors.review_held_display(task=t) for pk, t in held.items() if pk not in listed],
        # Videos still on their way (or stopped): said in place of "Nothing is waiting", and while any is
        # processing the list polls every 5 s instead of 15 s, so an item shows as soon as it is routed.
        "pipeline": selectors.review_videos_in_pipeline(),
        "sees_ops": _user(request).has_perm(Perm.MANAGE_INTEGRATIONS),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "moderation/review/queue.html#stats", context)
    return render(request, "moderation/review/queue.html", context)


def _claim_rows(
    *, user: User, queues: list[ReviewQueue], claimable: set[int], held: dict[int, ReviewTask]
) -> dict[str, Any]:
    """Per queue, whether "Claim next" hands ``user`` something and, where it does not, why: the queue list's rows
    and a queue's own page (which offered "Claim next" and its "n" for a queue holding only what this reviewer
    escalated, a claim that then answered "Nothing to claim for you"). ``claimable``: the queues holding an item to
    claim now (``review_queues_claimable``); ``held``: the items ``user`` holds, by queue."""
    # "Claim next" is offered where there is something to claim now (pending or lapsed items, looked up
    # live, not from the reused counts), or the item this reviewer already holds there.
    # Items of videos this reviewer uploaded are counted but never handed to them: a queue holding only those
    # offers no "Claim next" and says why.
    # Nor items they escalated or decided in another queue (four eyes): a senior queue holding only items this
    # reviewer escalated offers them no "Claim next" either, and says why.
    own_uploads = selectors.review_own_uploads_waiting(queues=queues, user=user)
    # An item held whose video was hidden from them since: not theirs to continue (it would open as a 404); "Claim
    # next" hands it back and says why, so the row offers it and says so.
    held_hidden = selectors.review_held_hidden_counts(user=user)
    left_to_others = selectors.review_queues_left_to_others(queues=[q for q in queues if q.pk in claimable], user=user)
    ahead = selectors.review_held_ahead(tasks=held.values())
    rows = [
        {
            "queue": q,
            "claimable": (q.pk in claimable and q.pk not in left_to_others) or q.pk in held or q.pk in held_hidden,
            "held_hidden": held_hidden.get(q.pk, 0),
            "own_uploads": own_uploads.get(q.pk, {}).get("own", 0),
            "worked_before": left_to_others.get(q.pk, {}).get("worked", 0),
            # Left to others for neither of those reasons: what waits there is not open to this reviewer.
            "not_open": q.pk in left_to_others
            and not left_to_others[q.pk]["worked"]
            and not own_uploads.get(q.pk, {}).get("own", 0),
            "held": selectors.review_held_display(
                task=held.get(q.pk), ahead=ahead.get(held[q.pk].pk) if q.pk in held else None
            ),
        }
        for q in queues
    ]
    return {"rows": rows, "own_uploads": own_uploads, "left_to_others": left_to_others}


def _hotkey_queue(rows: list[dict[str, Any]], open_task: ReviewTask | None) -> str | None:
    """The queue "n" claims from on the queue list: the one whose item this reviewer holds (they are working
    it; a moderation item before a tag item), else the most urgent moderation queue with work, and a tags queue only when no moderation queue
    has any (it sorted first by name, so "n" handed a moderator a tag-review item)."""
    if open_task is not None:
        return open_task.queue.slug
    waiting = [r["queue"] for r in rows if r["claimable"]]
    waiting.sort(key=lambda q: q.kind != ReviewQueue.Kind.MODERATION)  # stable: urgency order kept
    return waiting[0].slug if waiting else None


@permission_required(Perm.REVIEW_VIDEO)
def queue_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """One queue: its load and SLA, reviewers' gold accuracy and agreement between reviewers."""
    q = selectors.review_queue_get_for(user=_user(request), slug=slug)
    # A tags queue's items are tagged, not given verdicts: no review of theirs is agreed on or checked against gold
    # (its page showed verdict agreement tables of zeros and "verdicts of the policy's serving model").
    verdicts = q.kind == ReviewQueue.Kind.MODERATION
    # "Claim next" as the queue list's row offers it: greyed out, saying why, where it would hand this reviewer
    # nothing (empty, or only what they escalated or decided, or their own uploads).
    claim = _claim_rows(
        user=_user(request),
        queues=[q],
        claimable=selectors.review_queues_claimable(queues=[q]),
        held=selectors.review_tasks_open_for(user=_user(request)),
    )
    context = {
        "queue": q,
        "row": claim["rows"][0],
        "senior_queue_named": selectors.review_queue_named_for(user=_user(request), queue=q.escalation_queue),
        "stats": selectors.review_queue_stats(queue=q),
        "gold": selectors.review_gold_accuracy(queues=[q]) if verdicts else [],
        "agreement": selectors.review_agreement(queues=[q]) if verdicts else None,
        # As the queue list says it (the video, until when, the item held ahead): "You are holding item #4." beside
        # "Claimed 2" left the other one unexplained. The row's own, not looked up a second time.
        "held": claim["rows"][0]["held"],
    }
    return render(request, "moderation/review/queue_detail.html", context)


@permission_required(Perm.REVIEW_VIDEO)
def agreement(request: HttpRequest) -> HttpResponse:
    """Agreement dashboard: Cohen's κ and Krippendorff's α per queue and per category."""
    # Verdict queues only: a tags queue's items get tags, never two verdicts to agree on (its row was always "0 0 —").
    queues = list(selectors.review_queues_for(user=_user(request)).filter(kind=ReviewQueue.Kind.MODERATION))
    return render(
        request,
        "moderation/review/agreement.html",
        {"agreement": selectors.review_agreement(queues=queues), "gold": selectors.review_gold_accuracy(queues=queues)},
    )


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def claim_next(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Claim the next item of the queue ``slug`` (else the default queue) and open it. The queue list's
    "n" button also sends ``then=any``: if that queue was emptied since its counts were taken, the next
    queue this reviewer may work that has an item serves instead."""
    q = selectors.review_queue_get_for(user=_user(request), slug=slug) if slug else None
    queues = [q] if q is not None else [services.review_queue_default()]
    if q is None and not selectors.review_queue_may_work(user=_user(request), queue=queues[0]):
        # The default queue restricted to groups by an admin: the claim's refusal named it ("You may not work the
        # queue “…”"), the name its URL keeps from outsiders. The same 404 as a restricted queue's own URL.
        raise Http404(selectors.QUEUE_NOT_OPEN_TEXT)
    if request.POST.get("then") == "any":  # other queues of the same kind: a moderator is not sent to tag review
        first = queues[0]
        others = selectors.review_queues_for(user=_user(request)).filter(kind=first.kind).exclude(pk=first.pk)
        queues += list(others)
    for hidden in services.review_release_hidden(user=_user(request), queues=queues):
        messages.info(
            request,
            f"{selectors.HELD_HIDDEN_TEXT.format(queue=hidden.queue.name)} It was handed back to that queue's "
            "reviewers.",
        )
    try:
        with REVIEW_CLAIM_SECONDS.labels(q.slug if q else "any").time():
            task = services.review_claim_next_of(user=_user(request), queues=queues)
    except ModerationError as exc:
        raise PermissionDenied(str(exc)) from exc
    if task is None:
        messages.info(request, selectors.review_nothing_to_claim_text(queues=queues, user=_user(request)))
    else:
        if task.queue_id != queues[0].pk:
            messages.info(
                request, f"“{queues[0].name}” has nothing left to claim; this item is from “{task.queue.name}”."
            )
        services.review_claim_ahead(user=_user(request), task=task)  # the next item preloads, from either queue
    return _go_to(task)


def _screen(request: HttpRequest, task: ReviewTask, *, prefetch: bool = False) -> dict[str, Any]:
    context = selectors.review_screen_context(task=task, user=_user(request), prefetch=prefetch)
    # A stored file gone from media storage is said on the screen (and recorded), not a broken player.
    check = video_media_verify(video=task.decision.video, keyframes=context["keyframes"], by=_user(request))
    # A refusal said in the page's messages (a plain POST refused: severity missing) takes the focus (base.html).
    return {**context, "reveal": media_revealed(request), "media_check": check, "focus_error_message": True}


def _check_owner(request: HttpRequest, task: ReviewTask) -> None:
    if not selectors.review_queue_may_work(user=_user(request), queue=task.queue):
        # The 404 of an item hidden from the user (``review_task_get``), never the queue's name: a restricted
        # queue's name and its items are its groups' business.
        raise Http404
    if task.claimed_by_id != request.user.pk:
        earlier = selectors.review_worked_before(task=task, user=_user(request))
        if earlier is not None and task.status in (ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED):
            raise PermissionDenied(
                f"{selectors.review_worked_before_text(earlier=earlier)} “Claim next” will not give it to you."
            )
        raise PermissionDenied(
            claimed_by_another(task)
            if task.claimed_by_id and task.status == ReviewTask.Status.CLAIMED
            else _left_the_queue(task)
            if task.status in (ReviewTask.Status.DONE, ReviewTask.Status.ESCALATED)
            else "This item is not claimed by you; use “Claim next” on the Review queues page."
        )


def _check_open_for_action(request: HttpRequest, task: ReviewTask) -> None:
    """An action (submit, skip, escalate, release) on an item of a queue not open to the user is the 404 its page
    gives (``_check_owner``): it answered by the item's state ("already reviewed", "not claimed by you"), telling
    whether an item exists in a queue hidden from them and how far it got. Unless they hold it: a reviewer taken out
    of the queue's groups since they claimed it hears why, and the item goes back (``NO_LONGER_ALLOWED``)."""
    if not task.is_held_by(request.user) and not selectors.review_queue_may_work(user=_user(request), queue=task.queue):
        raise Http404


def _left_the_queue(task: ReviewTask) -> str:
    """Another's decided or escalated item sent the user to "Claim next", which never hands it out again.
    Neither the verdict nor the reviewer is named: a second independent reviewer must not learn them."""
    if task.status == ReviewTask.Status.ESCALATED:
        return "This item was escalated and has left this queue; it is worked in its escalation queue."
    return "This item has already been reviewed and has left the queue; “Claim next” will not bring it back."


def claimed_by_another(task: ReviewTask) -> str:
    """Why another reviewer's item does not open, and until when (the 403 page said only "claimed by another
    reviewer", then sent the user to their home page as if their role were the problem)."""
    until = task.lease_expires_at
    if until is not None and until <= timezone.now():
        # "until 02:34, when their claim expires" was read at 02:50: the item is free to be claimed again.
        return (
            f"Another reviewer’s claim on this item lapsed at {timezone.localtime(until):%H:%M}: “Claim next” on "
            "its queue can give it to you."
        )
    when = f" until {timezone.localtime(until):%H:%M}, when their claim expires" if until else ""
    return f"This item is claimed by another reviewer{when}. Claim the next item from the queue instead."


@never_cache
@permission_required(Perm.REVIEW_VIDEO)
def review_task(request: HttpRequest, pk: int) -> HttpResponse:
    """One item's screen; ``?prefetch=1`` from htmx/fetch: just the screen, fetched ahead of its turn.

    Never cached (``Cache-Control: no-store``): after Release or a verdict, the Back button must load
    the item's state afresh, not show its live form again from the browser's cache or bfcache.
    """
    task = selectors.review_task_get_or_gone(task_id=pk, user=_user(request))
    if task is None:  # opened or reloaded after its video was deleted: say so and lead on (hidden ones stay a 404)
        context = {
            "message": services.ITEM_GONE,
            "pk": pk,
            "next": selectors.review_task_held_next(user=_user(request)),
        }
        return render(request, "moderation/review/item_gone.html", context, status=410)
    if task.queue.kind == task.queue.Kind.TAGS:  # a tags-queue item is worked on the tag screen
        return redirect("moderation:tag_task", pk=task.pk)
    _check_owner(request, task)
    if request.htmx and request.GET.get("prefetch") == "1":  # type: ignore[attr-defined]
        return render(request, "moderation/review/task.html#screen", _screen(request, task, prefetch=True))
    return render(request, "moderation/review/task.html", _screen(request, task))


def _next_screen(request: HttpRequest, task: ReviewTask | None, *, refused: bool = False) -> HttpResponse:
    """Submit-and-next: a full page gets a redirect; htmx gets the next item's screen in this same
    response (already claimed ahead, its media prefetched), and the address bar follows. A ``refused``
    submit stays on its item: the address is replaced, not pushed (a second entry for the same item
    made the first Back press do nothing)."""
    if not request.htmx:  # type: ignore[attr-defined]
        return _go_to(task)
    if task is None:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("moderation:queue")
        return response
    fresh = selectors.review_task_get(task_id=task.pk)
    context = {**_screen(request, fresh), "inline_messages": True}
    response = render(request, "moderation/review/task.html#screen", context)
    response["HX-Replace-Url" if refused else "HX-Push-Url"] = reverse("moderation:review_task", args=[task.pk])
    return response


def _submit_in_background(request: HttpRequest, task: ReviewTask) -> JsonResponse:
    """A decision sent by the screen while it already shows the next item (static/review.js).

    Answers JSON, never messages (the screen has moved on): ``ok`` with what was recorded, the item
    now current (``next``: the one claimed ahead, which the screen shows) and the one claimed ahead of
    it (``ahead``, whose screen it fetches next); or ``ok: false`` with the reason, and whether the
    item is still this reviewer's, so the screen brings it back. A resent decision (a retry after a
    lost answer) gets the recorded verdict back, never a second one.
    """
    user = _user(request)
    try:
        review = services.review_submit(
            task=task,
            user=user,
            verdict=request.POST.get("verdict", ""),
            label=request.POST.get("label", ""),
            note=request.POST.get("note", ""),
            severity=request.POST.get("severity", ""),
            resend_ok=True,
        )
    except ModerationError as exc:
        now = ReviewTask.objects.filter(pk=task.pk).first()  # None: removed meanwhile
        decided = selectors.review_decided_by_you_text(task=task, user=user) if _already(exc) else None
        return JsonResponse(
            {
                "ok": False,
                "task": task.pk,
                "error": decided or str(exc),
                "still_yours": now is not None and now.is_held_by(user),
                # Decided by this reviewer (another tab): nothing of theirs was lost, the screen says so.
                "decided_by_you": decided is not None,
            },
            status=409,
        )
    nxt = services.review_claim_next(user=user, queue=task.queue)
    ahead = services.review_claim_ahead(user=user, task=nxt) if nxt is not None else None
    recorded = _recorded_text(review, task)
    if nxt is None:
        # The screen goes to the queue list, which shows these: the last item's "Recorded …" was lost with the page.
        messages.success(request, recorded)
        messages.info(request, selectors.review_nothing_to_claim_text(queues=[task.queue], user=user))

    def url(t: ReviewTask | None) -> str | None:
        return reverse("moderation:review_task", args=[t.pk]) if t is not None else None

    return JsonResponse(
        {
            "ok": True,
            "task": task.pk,
            "recorded": recorded,
            "next": nxt.pk if nxt else None,
            "next_url": url(nxt),
            "ahead": ahead.pk if ahead else None,
            "ahead_url": f"{url(ahead)}?prefetch=1" if ahead else None,
            # The screen shown was fetched before this decision: its "N waiting" is repainted from here.
            "waiting": selectors.review_queue_waiting(queue=task.queue),
        }
    )


def _gone(request: HttpRequest, pk: int) -> HttpResponse:
    """An action on an item that no longer exists (its video deleted while the screen was open): the words the race
    inside the submit gives (``services.GONE``), and the way on: the next item the reviewer holds, else the queues."""
    if request.headers.get("X-Review-Background") == "1":
        return JsonResponse({"ok": False, "task": pk, "error": services.GONE, "still_yours": False}, status=409)
    nxt = selectors.review_task_held_next(user=_user(request))
    messages.error(request, services.GONE + (" Here is your next item." if nxt is not None else ""))
    return _next_screen(request, nxt, refused=True)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def submit(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the verdict, then go straight to the next item (submit-and-next)."""
    task = selectors.review_task_get_or_gone(task_id=pk, user=_user(request))
    if task is None:
        return _gone(request, pk)
    _check_open_for_action(request, task)
    if request.headers.get("X-Review-Background") == "1":
        return _submit_in_background(request, task)
    try:
        with REVIEW_SUBMIT_SECONDS.labels(task.queue.slug).time():
            review = services.review_submit(
                task=task,
                user=_user(request),
                verdict=request.POST.get("verdict", ""),
                label=request.POST.get("label", ""),
                note=request.POST.get("note", ""),
                severity=request.POST.get("severity", ""),
            )
    except ModerationError as exc:
        return _next_screen(request, _refused(request, task, exc), refused=True)
    messages.success(request, _recorded_text(review, task))
    return _next_screen(request, _claim_next_and_ahead(request, task))


def _claim_next_and_ahead(request: HttpRequest, task: ReviewTask, *, skipped: int | None = None) -> ReviewTask | None:
    """The reviewer's next item in ``task``'s queue (the one claimed ahead, if still theirs), and
    the one after it claimed ahead in turn."""
    with REVIEW_CLAIM_SECONDS.labels(task.queue.slug).time():
        nxt = services.review_claim_next(user=_user(request), queue=task.queue)
    if nxt is None:
        messages.info(request, selectors.review_nothing_to_claim_text(queues=[task.queue], user=_user(request)))
        return None
    services.review_claim_ahead(user=_user(request), task=nxt, exclude_ids=[skipped] if skipped else ())
    return nxt


# An escalation or a skip is an item worked in the reviewer's session, as a decision is: the header's "2nd in this
# session" counts it. Both are plain form posts, so their message says so (``data-review-worked``) and workbench.js
# counts it on the page they land on, by the same rule (``reviewSessionWorked``) as a decision recorded by review.js.
WORKED = "review-worked"


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def escalate(request: HttpRequest, pk: int) -> HttpResponse:
    """Hand the item to the senior queue, then go on to the next item of this queue."""
    task = selectors.review_task_get_or_gone(task_id=pk, user=_user(request))
    if task is None:
        return _gone(request, pk)
    _check_open_for_action(request, task)
    try:
        senior = services.review_escalate(task=task, user=_user(request), reason=request.POST.get("reason", ""))
    except ModerationError as exc:
        return _go_to(_refused(request, task, exc))
    named = selectors.review_queue_named_for(user=_user(request), queue=senior.queue)
    messages.success(request, f"Item #{task.pk} escalated to {named}.", extra_tags=WORKED)
    return _go_to(_claim_next_and_ahead(request, task))


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def skip(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.review_task_get_or_gone(task_id=pk, user=_user(request))
    if task is None:
        return _gone(request, pk)
    _check_open_for_action(request, task)
    try:
        nxt = services.review_skip(task=task, user=_user(request), reason=request.POST.get("reason", ""))
    except ModerationError as exc:
        return _go_to(_refused(request, task, exc))
    if nxt is None:
        messages.info(request, "No other item is waiting; this one stays with you.")
        return _go_to(task)
    services.review_claim_ahead(user=_user(request), task=nxt, exclude_ids=[task.pk])
    reason = shown_text(request.POST.get("reason", "")).strip()  # as stored: no bidi controls
    messages.info(
        request, f"Skipped item #{task.pk} ({reason}): it is back in the queue for another reviewer.", extra_tags=WORKED
    )
    return _go_to(nxt)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def release(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.review_task_get_or_gone(task_id=pk, user=_user(request))
    if task is None:
        return _gone(request, pk)
    _check_open_for_action(request, task)
    try:
        services.review_release(task=task, user=_user(request))
    except ModerationError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Item #{task.pk} is back in the queue.")
    if task.queue.kind == task.queue.Kind.TAGS:  # released from the tag item screen: back to the tags queue
        return redirect("moderation:tag_queue")
    return _go_to(None)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-run the item's model with the user feedback on record now (its CoT's stage 4 went stale).
    Only the reviewer holding the item may ask (as for every action on it). htmx gets the re-run
    panel (queued, or why not); a plain form goes back to the item with a message."""
    task = selectors.review_task_get(task_id=pk, user=_user(request))
    _check_owner(request, task)
    error = ""
    try:
        decision_rerun_request(decision_id=task.decision_id, by=_user(request))
    except ModerationError as exc:
        error = str(exc)
    if not request.htmx:  # type: ignore[attr-defined]
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "Re-run queued: the model decides this item again with the new feedback.")
        return redirect("moderation:review_task", pk=task.pk)
    context = {**selectors.review_cot_panel_context(task=task), "rerun_error": error}
    return render(request, "moderation/review/task.html#rerun", context)


@permission_required(Perm.REVIEW_VIDEO)
def cot_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The CoT panel, polled (``?part=rerun``) while a re-run is on its way: its state while it is
    queued or running, then the whole panel, the re-run's reasoning in place of the stale one."""
    task = selectors.review_task_get(task_id=pk, user=_user(request))
    _check_owner(request, task)
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("moderation:review_task", pk=task.pk)
    context = selectors.review_cot_panel_context(task=task)
    rerun = context["rerun"]
    if request.GET.get("part") == "rerun" and rerun is not None and rerun.is_open:
        return render(request, "moderation/review/task.html#rerun", context)
    response = render(request, "moderation/review/task.html#cot", context)
    response["HX-Retarget"], response["HX-Reswap"] = "#cot", "outerHTML"
    return response


@post_only
@login_required
def reveal(request: HttpRequest) -> HttpResponse:
    """Remember whether media is shown unshielded; htmx/fetch callers get 204, forms go back."""
    request.session[REVEAL_SESSION_KEY] = request.POST.get("reveal") == "1"
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponse(status=204)
    nxt = request.POST.get("next", "")
    # Only a path of this site: anything else ("-1", a view's name) was taken by ``redirect`` for a URL name to
    # reverse, a 500 where the form goes back to the queue.
    if not nxt.startswith("/") or not url_has_allowed_host_and_scheme(
        nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        nxt = reverse("moderation:queue")
    return HttpResponseRedirect(nxt)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def video_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """The video page's "Retry" for a failed video: queue the stage it stopped at again."""
    video_open_or_404(user=_user(request), video_id=pk)  # a restricted queue's video: not for other groups
    return video_action(request, pk, action=services.video_retry_failed, done=_retried, back=_video_page(pk))


def _retried(video: Video) -> str:
    what = (
        "Model inference"
        if video.stage == Video.Stage.INFERENCE
        else f"Processing (from {video.get_stage_display().lower()})"
    )
    return f"{what} of “{video}” is queued again."


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def video_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    """The video page's "Dismiss" for a failed upload that is not a video (no retry can process it)."""
    video_open_or_404(user=_user(request), video_id=pk)
    return video_action(
        request,
        pk,
        action=services.video_failure_dismiss,
        done=lambda video: f"“{video}” is dismissed: it is no longer counted among the failed videos.",
        back=_video_page(pk),
    )


def _video_page(pk: int) -> str:
    return reverse("moderation:video_detail", args=[pk])
