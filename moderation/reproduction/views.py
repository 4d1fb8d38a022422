"""Pair review screens: the pair queue and one claimed pair shown side by side."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache

from moderation.errors import ModerationError
from moderation.media.selectors import video_get, video_open_or_404
from moderation.media.services import video_media_verify
from moderation.media.shield import media_revealed
from moderation.reproduction import selectors, services
from moderation.reproduction.models import PairReview, ReproCandidate
from moderation.review.services import REVIEW_NOTE_MAX_CHARS
from workbench.form_routes import post_only
from workbench.pagination import CappedCount, WindowPaginator
from workbench.roles import Perm, permission_required

PAIRS_PER_PAGE = 50


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


@permission_required(Perm.REVIEW_VIDEO)
def pair_queue(request: HttpRequest) -> HttpResponse:
    # The rule is applied to a window of the waiting pairs, strongest first (``WindowPaginator``), not to them all.
    waiting = selectors.pair_queue_pending()
    pending = _pairs_open_to(request, waiting).select_related("video", "original")
    page = WindowPaginator(pending, PAIRS_PER_PAGE, window=waiting).get_page(request.GET.get("page"))
    context = {
        "pending": page,
        "page": page,
        "threshold": selectors.PAIR_QUEUE_THRESHOLD,
        "held": selectors.pair_held_by(user=request.user),
    }
    if request.htmx:  # type: ignore[attr-defined]  # the rows and their pager: no heading to count for
        return render(request, "moderation/reproduction/queue.html#pair-rows", context)
    # The heading's "waiting" is the count the page's walk made (capped as its pager's), the others as cheaply.
    context["stats"] = stats = selectors.pair_queue_stats(user=request.user, pending=CappedCount.of(page.paginator))
    # "Claim next pair" gives the pair the reader holds, else one waiting for them: with neither it is disabled,
    # as an empty review queue's "Claim next" is (it only answered "No pairs are waiting for a verdict.").
    context["claimable"] = context["held"] is not None or stats["pending"].n > 0
    return render(request, "moderation/reproduction/queue.html", context)


@permission_required(Perm.REVIEW_VIDEO)
def pairs_reviewed(request: HttpRequest) -> HttpResponse:
    """The pairs with a verdict, the latest first, each linking to its pair screen."""
    decided = selectors.pairs_reviewed()
    reviewed = _pairs_open_to(request, decided).select_related("video", "original", "review__reviewer")
    page = WindowPaginator(reviewed, PAIRS_PER_PAGE, window=decided).get_page(request.GET.get("page"))
    return render(request, "moderation/reproduction/reviewed.html", {"page": page})


@permission_required(Perm.REVIEW_VIDEO)
def video_pairs(request: HttpRequest, pk: int) -> HttpResponse:
    """Every pair of a video that the user may open, the strongest first, page by page: its page shows the
    strongest few and links here. ``?side=copies`` / ``?side=originals``: one side of its likely re-uploads, where
    the review screen's re-upload line sends "N more later copies" / "earlier videos"."""
    video_open_or_404(user=request.user, video_id=pk)
    video = video_get(pk=pk)
    side = selectors.PAIRS_OF_VIDEO_FILTER.read(request.GET.get("side"))
    pairs = selectors.pairs_of_video(video=video, user=request.user, side=side.value)
    window = selectors.pairs_touching(video=video)
    page = WindowPaginator(pairs, PAIRS_PER_PAGE, window=window).get_page(request.GET.get("page"))
    context = {"video": video, "page": page, "side": side, "threshold": selectors.PAIR_QUEUE_THRESHOLD}
    return render(request, "moderation/reproduction/video_pairs.html", context, status=side.http_status)


def _pairs_open_to(request: HttpRequest, pairs: QuerySet[ReproCandidate]) -> QuerySet[ReproCandidate]:
    return selectors.pairs_open_to(user=request.user, pairs=pairs)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def pair_claim_next(request: HttpRequest) -> HttpResponse:
    candidate = services.pair_claim_next(user=_user(request))
    if candidate is None:
        messages.info(request, "No pairs are waiting for a verdict.")
        return redirect("moderation:repro_queue")
    return redirect("moderation:repro_pair", pk=candidate.pk)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def pair_claim(request: HttpRequest, pk: int) -> HttpResponse:
    """Claim the pair on screen (reached from a video's page): the queue's "Claim next" hands out another one."""
    candidate = get_object_or_404(_pairs_open_to(request, ReproCandidate.objects.all()), pk=pk)
    try:
        services.pair_claim(candidate=candidate, user=_user(request))
    except ModerationError as exc:
        messages.error(request, str(exc))
    return redirect("moderation:repro_pair", pk=pk)


# Never cached: Back to a pair just decided loads it afresh (reviewed), not the cached live verdict buttons.
@never_cache
@permission_required(Perm.REVIEW_VIDEO)
def pair_detail(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = get_object_or_404(
        _pairs_open_to(request, ReproCandidate.objects.all()).select_related("video", "original", "claimed_by"), pk=pk
    )
    review = PairReview.objects.filter(candidate=candidate).select_related("reviewer").first()
    context = {
        "candidate": candidate,
        "review": review,
        "mine": candidate.claimed_by_id == request.user.pk,
        "held_by": selectors.pair_held_by_other(candidate=candidate, user=request.user),
        "labels": ReproCandidate.Label.choices,
        "note_max_chars": REVIEW_NOTE_MAX_CHARS,
        "reveal": media_revealed(request),
        **selectors.pair_detail(candidate=candidate),
    }
    # Each side's stored files (all its keyframes, not only those shown) are checked and what is missing
    # recorded, as on the review screen.
    copy_check = context["copy_check"] = video_media_verify(video=candidate.video, by=_user(request))
    original_check = context["original_check"] = video_media_verify(video=candidate.original, by=_user(request))
    # Controls are offered only where they can act: "Play both" needs two players, "Reveal media" something
    # shielded (a player or a keyframe image); a side with nothing to play says so in the player's place.
    context["copy_plays"] = copy_check.plays(candidate.video)
    context["original_plays"] = original_check.plays(candidate.original)
    context["has_media"] = (
        context["copy_plays"]
        or context["original_plays"]
        or copy_check.shows_image([kf for kf, _ in context["copy_keyframes"]])
        or original_check.shows_image([kf for kf, _ in context["original_keyframes"]])
    )
    return render(request, "moderation/reproduction/pair.html", context)


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def pair_submit(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = get_object_or_404(_pairs_open_to(request, ReproCandidate.objects.all()), pk=pk)
    try:
        review = services.pair_review_submit(
            candidate=candidate, user=_user(request), verdict=request.POST.get("verdict", ""),
            note=request.POST.get("note", ""),
        )  # fmt: skip
    except ModerationError as exc:
        messages.error(request, str(exc))
        return redirect("moderation:repro_pair", pk=pk)
    # Which pair and what, as the review queue says it ("Recorded … for item #N"): the next pair is already shown.
    messages.success(request, f"Recorded “{review.get_verdict_display()}” for pair #{candidate.pk}.")
    nxt = services.pair_claim_next(user=_user(request))
    return redirect("moderation:repro_pair", pk=nxt.pk) if nxt else redirect("moderation:repro_queue")


@post_only
@permission_required(Perm.REVIEW_VIDEO)
def pair_release(request: HttpRequest, pk: int) -> HttpResponse:
    services.pair_release(
        candidate=get_object_or_404(_pairs_open_to(request, ReproCandidate.objects.all()), pk=pk), user=_user(request)
    )
    return redirect("moderation:repro_queue")
