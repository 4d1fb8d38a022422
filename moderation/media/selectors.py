"""Reads of the media wing."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, overload

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    Expression,
    F,
    Func,
    IntegerField,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.sql import Query
from django.http import Http404
from django.shortcuts import get_object_or_404

from moderation.media.models import Keyframe, TranscriptSegment, Video
from workbench.db import PREPARE_MARK
from workbench.roles import ROLE_PERMISSIONS

IN_FLIGHT = (Video.Status.UPLOADED, Video.Status.PROCESSING)


# The prefixes the workbench puts before a record's own id when it makes the video's external id (the KuaiMod import's
# ``EXTERNAL_ID_PREFIX`` in moderation/inference/kuaimod.py, ``generate_demo``'s): a search by the bare id finds it.
SOURCE_ID_PREFIXES = ("kuaimod:", "demo:")


def video_list(*, external_id: str = "", status: str = "") -> QuerySet[Video]:
    """The newest videos first (the list screen pages through them); with ``status``, only those in it (the
    failed ones: where an admin finds the videos that stopped, a platform's among them, which before their
    first decision only admins see); with ``external_id``, the videos known by
    it: the workbench's own id (uploads, manifests, imports) or a platform's for a video it submitted (the
    screen's users are the workbench's staff, who see every platform's; the API scopes a platform to its own).
    The platforms' links are reached through the app registry: media is below the integrations wing."""
    videos = Video.objects.select_related("created_by").order_by("-created_at", "-pk")
    if status:
        videos = videos.filter(status=status)
    if not external_id:
        return videos
    links = apps.get_model("moderation", "IntegrationVideo").objects
    by_platform = links.filter(video_id=OuterRef("pk"), external_id=external_id)
    # The record's own id finds it too: a KuaiMod import stores pid km0042 as "kuaimod:km0042", the demo's videos
    # "demo:<slug>", and the admin who typed the pid from their file was told no video has it.
    ours = [
        external_id,
        *(f"{prefix}{external_id}" for prefix in SOURCE_ID_PREFIXES if not external_id.startswith(prefix)),
    ]
    return videos.filter(Q(external_id__in=ours) | Exists(by_platform))


def video_any_in_flight(*, videos: list[Video]) -> bool:
    """Whether any of ``videos`` is still queued or processing (the list then keeps polling)."""
    return any(v.status in IN_FLIGHT for v in videos)


def video_get(*, pk: int) -> Video:
    """One video, without its comments (a list a platform may make 5 MB long): the video's page reads them a page at
    a time (``VideoComments``)."""
    return get_object_or_404(Video.objects.select_related("created_by").defer("comments"), pk=pk)


def video_keyframes(*, video: Video) -> QuerySet[Keyframe]:
    return Keyframe.objects.filter(video=video).order_by("index")


def video_selected_keyframes(*, video: Video) -> QuerySet[Keyframe]:
    """The AKS-selected keyframes with their salient patches and OCR lines (the detail page overlays them)."""
    return (
        Keyframe.objects.filter(video=video, selected=True).prefetch_related("patches", "ocr_boxes").order_by("index")
    )


def video_segments(*, video: Video) -> QuerySet[TranscriptSegment]:
    return TranscriptSegment.objects.filter(video=video).order_by("index")


def video_media_for_display(*, video: Video, comments: CommentsShown | None = None) -> dict[str, Any]:
    """What the shared media panels (``moderation/_video_media.html``) show of ``video``: keyframes, the
    selected ones (patches drawn over them), frames with on-screen text, transcript segments (or, for a
    text-only item imported with its speech and no timings, its speech lines: ``video_speech_lines``), and the
    timestamps CoT evidence links to. Reads ``video.keyframes`` / ``video.segments`` as prefetched by
    the screen's own selector (with ``keyframes__patches``), so it adds no queries of its own. ``comments``: the
    comments panel as the screen's own query read it (``video_comments_preview``, with ``comments`` deferred);
    without it they are cut from ``video.comments``."""
    keyframes, segments = list(video.keyframes.all()), list(video.segments.all())
    return {
        "video": video,
        "keyframes": keyframes,
        "selected_keyframes": [kf for kf in keyframes if kf.selected],
        "frame_ocr": [kf for kf in keyframes if kf.ocr_text],
        "ocr_lines": video_ocr_lines(video=video),
        "segments": segments,
        "speech_lines": [] if segments else video_speech_lines(video=video),
        "times": evidence_times(keyframes=keyframes, segments=segments),
        "comments": comments if comments is not None else video_comments_shown(video=video),
    }


# A video's comments on the shared media panels: at most this many, each cut at this many characters. A platform
# may send 1,000 comments of 5,000 characters (5 MB) and every one was drawn on the review screen; all of them,
# whole, stay on the video's own page, which the panel links to when it shows less.
COMMENTS_SHOWN = 50
COMMENT_CHARS_SHOWN = 1000


@dataclass(frozen=True)
class CommentsShown:
    shown: list[tuple[str, bool]]  # (text, whether it was cut), the first ``COMMENTS_SHOWN``
    total: int

    @property
    def cut(self) -> bool:
        """Whether the panel shows less than the whole: fewer comments, or a comment cut short."""
        return self.total > len(self.shown) or any(was_cut for _text, was_cut in self.shown)

    @classmethod
    def of(cls, comments: Sequence[Any], *, total: int) -> CommentsShown:
        """The panel of a video's first comments (more may have been read: only the first
        :data:`COMMENTS_SHOWN` are kept), each cut at :data:`COMMENT_CHARS_SHOWN` characters (with "…"), and how many
        the video holds."""
        texts = [str(c) for c in comments[:COMMENTS_SHOWN]]
        shown = [
            (c, False) if len(c) <= COMMENT_CHARS_SHOWN else (c[: COMMENT_CHARS_SHOWN - 1].rstrip() + "…", True)
            for c in texts
        ]
        return cls(shown=shown, total=total)


def video_comments_shown(*, video: Video) -> CommentsShown:
    """The comments panel cut from ``video.comments`` as loaded (the whole field: a screen that reads many videos'
    rows, or one with the field deferred, reads ``video_comments_preview`` in its own query instead)."""
    comments = list(video.comments or [])
    return CommentsShown.of(comments, total=len(comments))


class JsonList(Func):
    """A JSON column as a list: ``'[]'`` where it holds anything else (``jsonb_array_elements`` and
    ``jsonb_array_length`` raise on an object or a scalar, and a 500 for one odd row is worse than no comments)."""

    template = "CASE WHEN jsonb_typeof(%(expressions)s) = 'array' THEN %(expressions)s ELSE '[]'::jsonb END"
    output_field = JSONField()


class CommentsHead(Func):
    """The first :data:`COMMENTS_SHOWN` elements of a JSON list (a video's ``comments``), each as text cut at one
    character more than :data:`COMMENT_CHARS_SHOWN` (so ``CommentsShown.of`` still knows it was cut): at most
    ~50 kB read from a row that may hold 5 MB."""

    template = (
        f"(SELECT coalesce(jsonb_agg(left(c.text, {COMMENT_CHARS_SHOWN + 1}) ORDER BY c.n), '[]'::jsonb) "
        f"FROM jsonb_array_elements_text(%(expressions)s) WITH ORDINALITY AS c(text, n) WHERE c.n <= {COMMENTS_SHOWN})"
    )
    output_field = JSONField()


def video_comments_preview(*, field: str) -> dict[str, Expression]:
    """Annotations that read the comments panel of the video at ``field`` (``"comments"`` on a video queryset,
    ``"decision__video__comments"`` on the review screen's) in the same query: ``comments_head`` (the first ones,
    cut) and ``comments_total``. A screen that defers the field and annotates these reads a bounded part of the row
    instead of every comment; ``video_comments_from_preview`` turns them into the panel."""
    comments = JsonList(F(field))
    return {
        "comments_head": CommentsHead(comments),
        "comments_total": Func(comments, function="jsonb_array_length", output_field=IntegerField()),
    }


def video_comments_from_preview(row: Any) -> CommentsShown:
    """The comments panel of a row annotated with ``video_comments_preview``."""
    return CommentsShown.of(row.comments_head or [], total=row.comments_total or 0)


# The video's own page pages its comments, this many a page, each page read alone (``VideoCommentsPage``).
COMMENTS_PER_PAGE = 50


class VideoComments:
    """A video's comments as a lazy sequence for Django's ``Paginator`` (the list screens' paging, over a JSON list
    rather than a queryset): ``count()`` and each slice are one small query on the video's row, so a page of a video
    with 1,000 long comments reads that page's comments alone, never the whole field."""

    def __init__(self, *, video_id: int) -> None:
        self.video_id = video_id

    def count(self) -> int:
        return int(
            Video.objects.filter(pk=self.video_id)
            .annotate(n=Func(JsonList(F("comments")), function="jsonb_array_length", output_field=IntegerField()))
            .values_list("n", flat=True)
            .first()
            or 0
        )

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[str]:  # every comment: what a page avoids
        return iter(self[0:])

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, int):
            if index < 0:
                raise IndexError("VideoComments takes no negative index")
            one = self[index : index + 1]
            if not one:
                raise IndexError(index)
            return one[0]
        if index.step not in (None, 1):
            raise ValueError("VideoComments is read a page (a slice without a step) at a time")
        start, stop = max(index.start or 0, 0), index.stop
        if stop is not None and stop <= start:
            return []
        # jsonb_path_query_array's "$[a to b]" is 0-based and inclusive; "last" is the final element.
        path = f"$[{start} to {'last' if stop is None else stop - 1}]"
        page = (
            Video.objects.filter(pk=self.video_id)
            .annotate(
                page=Func(
                    JsonList(F("comments")),
                    Value(path),
                    function="jsonb_path_query_array",
                    template="%(function)s(%(expressions)s::jsonpath)",
                    output_field=JSONField(),
                )
            )
            .values_list("page", flat=True)
            .first()
        )
        return [str(c) for c in page or []]


def video_ocr_lines(*, video: Video) -> list[tuple[int, str]]:
    """The video's on-screen text, one ``(index, line)`` a line: processing joins the lines with " | ", as a KuaiMod
    import's OCR field comes. The index counts every "|"-separated part, the empty ones too, as the tags panel's
    evidence ("ocr #3", ``tagging.text.split_segments``) does, so its link lands on the line it quotes."""
    parts = ((i, part.strip()) for i, part in enumerate(video.ocr_text.split("|")))
    return [(i, part) for i, part in parts if part]


def video_speech_lines(*, video: Video) -> list[tuple[int, str]]:
    """The speech of an item imported as text (a KuaiMod record's ASR field: parts joined with " | ", no
    timings), one ``(index, line)`` a part, for the transcript panels of a video without transcript segments:
    the model reads these lines as its speech (``content_bundle_for``) and quotes them in its reasoning, so a
    screen that said "No speech" left a labeler unable to check the quote. The index counts every
    "|"-separated part, the empty ones too, as the tags panel's speech evidence ("seg-3") does."""
    parts = ((i, part.strip()) for i, part in enumerate(video.asr_text.split("|")))
    return [(i, part) for i, part in parts if part]


def evidence_times(*, keyframes: list[Any], segments: list[Any]) -> dict[tuple[str, Any], float]:
    """Timestamps of a video's keyframes, their patches and segments, keyed like CoT evidence
    ``(kind, ref)`` (``[frame:ID]`` and ``[patch:ID]`` citations included); a patch's time is its
    keyframe's, known only where patches were prefetched (no query per keyframe)."""
    times: dict[tuple[str, Any], float] = {}
    for k in keyframes:
        times[("keyframe", k.pk)] = times[("frame", k.pk)] = k.timestamp
        prefetched = getattr(k, "_prefetched_objects_cache", {}).get("patches", ())
        for patch in prefetched:
            times[("patch", patch.pk)] = k.timestamp
    times.update({("segment", s.pk): s.start for s in segments})
    return times


def videos_all_open_to(*, user: Any) -> bool:
    """Whether ``user`` sees every video, restricted queues' included: superusers and the admin role (every admin
    permission: the permission cache the view's role check filled, no query). Screens that cannot be narrowed to
    single videos (the audit log's free-form events) are theirs only."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser or user.has_perms(ROLE_PERMISSIONS["admin"]))


def _item_rules(*, video_id: Any, opens: Q) -> tuple[QuerySet[Any], QuerySet[Any]]:
    """What closes a video (``video_id``: its id or an ``OuterRef`` to it) to whoever is not in a restricted
    queue's groups: its items in such a queue that no item of the same policy in a queue ``opens`` matches (an
    item filter: the queues open to all, or those open to one user), and the video itself while routing has sent
    it to such a queue whose item is not made yet.

    Only an item in a moderation queue opens a video: a tags item is made from tag suggestions without the
    routing decision (done or escalated ones are kept after routing has restricted the video), so only the
    review queues routing chose decide who sees the content. An item in a group-restricted queue (any status: a
    decided item's content is still sensitive) closes the video unless an item of the same policy opens it: a
    policy whose routing put the video into a restricted queue and an open one shares it, but one policy's open
    queue (the default queue every decision falls back to) does not undo another policy's restriction. A queue
    that names its own model gets its item once that model has decided (``review_queue_decision``); until then
    ``Video.routed_restricted`` without any item in a restricted moderation queue closes the video to all but
    those who see every video (which policy's open queue could share it is not known yet)."""
    model = apps.get_model("moderation", "ReviewTask")
    tags = apps.get_model("moderation", "ReviewQueue").Kind.TAGS
    same_policy = model.objects.exclude(queue__kind=tags).filter(
        opens,
        decision__video_id=OuterRef("decision__video_id"),
        decision__policy_version__policy_id=OuterRef("decision__policy_version__policy_id"),
    )
    restricted = model.objects.filter(queue__allowed_groups__isnull=False)
    closing = restricted.filter(decision__video_id=video_id).exclude(Exists(same_policy))
    made = restricted.exclude(queue__kind=tags).filter(decision__video_id=OuterRef("pk"))
    pending = Video.objects.filter(pk=video_id, routed_restricted=True).exclude(Exists(made))
    return closing, pending


def video_open_to_q(*, user: Any, field: str = "pk") -> Q:
    """The rule of ``videos_open_to`` as a filter for any queryset whose ``field`` is a video id.

    A video with no decision has not been routed, so nobody knows yet whether it is restricted: it is open only
    to its uploader (and to those who see every video). A video with a decision has been routed under every
    policy that decided it: one inference run saves its decisions under all auto-applied policies and routes
    them in one transaction (``decisions_create_for_video``), so no reader sees the first policy's decision
    before a later policy has routed the video to a restricted queue. Once decided, it is open unless routing
    sent it to a queue restricted to groups ``user`` is not in (``_item_rules``: an item there and no item of the
    same policy in a moderation queue open to all or to one of ``user``'s groups, or that queue's item not made
    yet). Review's tables are reached through the app registry, not an import: media is the bottom wing, so
    every screen that shows a video (media, tagging, review, annotation, the API, the audit log) can apply the
    one rule. EXISTS subqueries, no per-row query."""
    if videos_all_open_to(user=user):
        return Q()
    return video_open_to_others_q(user_pk=user.pk, field=field)


def video_open_to_others_q(*, user_pk: int | None, field: str = "pk") -> Q:
    """``video_open_to_q`` for a user who does not see every video (``videos_all_open_to`` is False), known by
    id alone (``None``: anonymous): past that check the rule depends on nothing else of the user, so its SQL is
    compiled once per user id and place (``_OpenToOthers``), not on every query that applies it."""
    return Q(_OpenToOthers(user_pk=user_pk, field=field))


class _OpenToOthers(Expression):
    """The rule (``_open_to_others_rule``) as one filter expression whose SQL is cached.

    Building the rule's EXISTS legs, resolving them against a query and compiling them took 3-15 ms of Python
    each time a screen applied it (a video list applies it three times: its count, its rows and their
    ``closed_to_uploader``). Past the user's id the SQL depends only on the video id column it is keyed by and
    the alias prefix of the query it goes into (which names its subqueries' tables), so it is compiled once for
    each of those (``_open_to_others_sql``: the rule itself, applied by Django to a stand-in query with that
    prefix whose video id is that column) and reused; the column is resolved as any filter's ``field`` is, with
    the same joins. The SQL is the one the rule compiles to in place, so it finds the same videos
    (``tests/moderation/media/test_visibility_sql_cache.py`` compares the two)."""

    conditional = True

    def __init__(self, *, user_pk: int | None, field: str) -> None:
        super().__init__(output_field=BooleanField())
        self.user_pk = user_pk
        self.video = F(field)

    def get_source_expressions(self) -> list[Any]:
        return [self.video]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.video,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        column, params = compiler.compile(self.video)
        sql, rule_params = _open_to_others_sql(
            self.user_pk, column, tuple(params), compiler.query.alias_prefix, connection.alias
        )
        return sql, list(rule_params)


_VIDEO_REF = "open_video_ref"


@functools.lru_cache(maxsize=2048)
def _open_to_others_sql(
    user_pk: int | None, column: str, params: tuple[Any, ...], alias_prefix: str, using: str
) -> tuple[str, tuple[Any, ...]]:
    """The SQL of ``_open_to_others_rule`` in a query of alias prefix ``alias_prefix`` whose video id is
    ``column``: compiled on a stand-in video query with that prefix (so its subqueries take the aliases they take
    in the real query) whose ``_VIDEO_REF`` is the column itself."""
    query = Query(Video)
    query.alias_prefix = alias_prefix
    # ``column`` is SQL Django compiled for a column reference (``_OpenToOthers.as_sql``), never a caller's text.
    query.add_annotation(RawSQL(column, params), _VIDEO_REF)  # noqa: S611
    query.add_q(_open_to_others_rule(user_pk=user_pk, field=_VIDEO_REF))
    sql, rule_params = query.get_compiler(using=using).compile(query.where)
    # Marked: a statement that carries the rule runs prepared (``workbench.db.prepare_marked``), planned once per
    # connection instead of on each request.
    return f"({PREPARE_MARK} {sql})", tuple(rule_params)


def _open_to_others_rule(*, user_pk: int | None, field: str) -> Q:
    """The rule for a user who does not see every video, as EXISTS subqueries on ``field``: its one home.

    Decided and not closed (``_item_rules``), or the user's own upload not decided yet. A queue open to the user is
    one with no groups or with one of theirs, read from their memberships (``auth_user_groups``) alone: through
    ``allowed_groups__user`` it joined ``auth_group`` as well, one more table to plan in every leg, and for an
    anonymous user (no id) read ``IS NULL``, true of a group without members: anonymous is in no group.

    Kept an OR of the two cases: written as one AND ("decided or own upload, and not closed, and not pending while
    decided", the same videos) it planned in ~2 ms instead of 5-8 ms, but PostgreSQL then ran a list's NOT EXISTS
    legs as merge anti-joins over the whole table, and the API's video and decision lists took 25-30 % longer at
    100k videos; with the statements prepared (``PREPARE_MARK``) planning no longer counts (``bench/RESULTS.md``)."""
    open_to_user = Q(queue__allowed_groups__isnull=True)
    if user_pk is not None:  # anonymous: in no group
        memberships = get_user_model().groups.through.objects.filter(user_id=user_pk).values("group_id")
        open_to_user |= Q(queue__allowed_groups__in=memberships)
    closing, pending = _item_rules(video_id=OuterRef(field), opens=open_to_user)
    decided = apps.get_model("moderation", "Decision").objects.filter(video_id=OuterRef(field))
    after_routing = Q(Exists(decided)) & ~Q(Exists(closing)) & ~Q(Exists(pending))
    if user_pk is None:
        return after_routing
    own_upload = Video.objects.filter(pk=OuterRef(field), created_by_id=user_pk)
    return after_routing | (~Q(Exists(decided)) & Q(Exists(own_upload)))


def videos_open_to(*, user: Any, qs: QuerySet[Any] | None = None, field: str = "pk") -> QuerySet[Any]:
    """``qs`` (default: every video) narrowed to the videos ``user`` may see; ``field`` names the video id.
    Content routed to a group-restricted review queue is seen only by that queue's groups and admins."""
    qs = Video.objects.all() if qs is None else qs
    return qs.filter(video_open_to_q(user=user, field=field))


def video_open_to(*, user: Any, video_id: int) -> bool:
    """Whether ``user`` may see video ``video_id`` (``videos_open_to``'s rule); False for no such video."""
    return videos_open_to(user=user, qs=Video.objects.filter(pk=video_id)).exists()


def videos_listed_for(*, user: Any, qs: QuerySet[Video]) -> QuerySet[Video]:
    """The video list's rows for ``user`` out of ``qs``: the videos open to them, and their own uploads that
    routing has since sent to a review queue restricted to groups they are not in, annotated
    ``closed_to_uploader``. Such a row names only the video's id and upload time and says where it went (the
    uploader is told, not shown: who may see restricted content is unchanged); before, the upload vanished from
    its uploader's list without a word."""
    if videos_all_open_to(user=user) or user.pk is None:
        return qs.filter(video_open_to_q(user=user)).annotate(closed_to_uploader=Value(False))
    rule = video_open_to_q(user=user)
    return qs.filter(rule | Q(created_by_id=user.pk)).annotate(
        closed_to_uploader=Case(When(rule, then=Value(False)), default=Value(True), output_field=BooleanField())
    )


def video_closed_to_uploader(*, user: Any, video_id: int) -> bool:
    """Whether ``video_id`` is ``user``'s own upload that the rule (``video_open_to_q``) hides from them: routing
    sent it to a review queue restricted to groups they are not in (an upload not decided yet is its
    uploader's)."""
    if user.pk is None or videos_all_open_to(user=user):
        return False
    mine = Video.objects.filter(pk=video_id, created_by_id=user.pk)
    return mine.exists() and not mine.filter(video_open_to_q(user=user)).exists()


def video_already_uploaded_hidden_text(*, user: Any, video_id: int) -> str:
    """What an upload of bytes already uploaded as ``video_id``, a video hidden from ``user``, is answered (the
    form and the API): nothing about the video, except to its own uploader, who is told it went to a restricted
    review queue (``video_closed_to_uploader``)."""
    if video_closed_to_uploader(user=user, video_id=video_id):
        return (
            f"You uploaded this file before (#{video_id}); it was sent to a restricted review queue and is no "
            "longer open to you. Nothing new was queued."
        )
    return "This file was already uploaded. Nothing new was queued."


def video_not_open_reason(*, user: Any, video_id: int | None = None) -> str:
    """What a 404 for a video says to ``user``: for those who see every video, that there is none; to the
    uploader of ``video_id`` when routing has closed it to them, that their upload went to a restricted review
    queue (they know it exists: they sent it); for anyone else the rule that may hide one
    (``video_open_to_q``), so a moderator who follows a link to a colleague's upload not decided yet learns
    why and when it opens. Apart from the uploader's own video the words depend on the user only, never on the
    video: a hidden video and a missing one read the same."""
    if videos_all_open_to(user=user):
        return "No such video."
    if video_id is not None and video_closed_to_uploader(user=user, video_id=video_id):
        return (
            f"Your upload #{video_id} was sent to a restricted review queue, so it is no longer open to "
            "you. That queue's reviewers decide it; an admin can tell you more."
        )
    return (
        "No such video, or it is not open to you: a video the model has not decided yet is open only to its "
        "uploader and the admins (other reviewers see it once it is decided), and one routed to a restricted "
        "review queue only to that queue's groups."
    )


def video_open_or_404(*, user: Any, video_id: int) -> None:
    """404 (never 403: a hidden video's existence is not revealed) unless ``user`` may see the video; its reason
    is ``video_not_open_reason``."""
    if not video_open_to(user=user, video_id=video_id):
        raise Http404(video_not_open_reason(user=user, video_id=video_id))


def video_restricted(*, video_id: int) -> bool:
    """Whether video ``video_id`` is hidden from moderators outside some queue's groups (``video_open_to_q``):
    an item in a group-restricted queue closes it (no item of the same policy in a moderation queue open to all),
    or routing sent it to such a queue whose item is not made yet (``_item_rules``). Whatever would put it into
    an open queue (the tags queue) must not: its item there would be claimed by moderators who may not open it."""
    closing, pending = _item_rules(video_id=video_id, opens=Q(queue__allowed_groups__isnull=True))
    return closing.exists() or pending.exists()


def media_path_open_to(*, user: Any, path: str) -> bool:
    """Whether ``user`` may fetch the media file at ``path`` (a video's file or cover, a keyframe image):
    not when it belongs to a video hidden from them. A keyframe file belongs to the video its folder names
    (``keyframes/<video id>/``, the pipeline's naming) even before a row names it: the frames are stored
    before their rows commit, and a stage that dies between the two leaves them behind, at addresses anyone
    can guess while the video is hidden (not decided yet). Any other file no video names is left to the
    media view."""
    if videos_all_open_to(user=user):
        return True
    parts = PurePosixPath(path).parts
    if len(parts) > 2 and parts[0] == "keyframes":
        folder = parts[1]
        if not (folder.isascii() and folder.isdigit() and len(folder) <= 18):
            return False  # the pipeline's staging folders (".v12-…"): never served
        if not video_open_to(user=user, video_id=int(folder)):
            return False
    owners = Video.objects.filter(Q(file=path) | Q(cover=path) | Q(keyframes__image=path))
    return not owners.exclude(video_open_to_q(user=user)).exists()
