"""The list screens moved to ``WindowPaginator`` (a proposal's sightings, the pair queue, the reviewed pairs, a
video's pairs, the correction candidates, the Tag2CoT tasks, the adjudications) give, page by page, the rows, the
order and the links Django's paginator gave, for readers who see different parts of the library
(``tests/moderation/media/test_visibility_sql_cache.py``'s library: one video per case of the rule); only a count
past the cap differs, and the screen says "N+" and offers no last page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from annotation import selectors as annotation_selectors
from annotation.models import Adjudication, CotCorrection, DisagreementRule, Tag2CotTask
from moderation.inference.models import Decision
from moderation.media.models import Video
from moderation.reproduction import selectors as repro_selectors
from moderation.reproduction.models import PairReview, ReproCandidate
from moderation.tagging.models import TagProposal, TagProposalSighting
from tests.factories import CotCorrectionFactory, DecidedVideoFactory, UserFactory
from tests.moderation.media.test_visibility_sql_cache import _library
from tests.module_rows import refuse_transactional, rows_for_the_module
from workbench import pagination
from workbench.pagination import WindowPaginator

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(request: pytest.FixtureRequest, world_of_the_module: dict[str, Any]) -> dict[str, Any]:
    """The rule's library and a few decided videos, each list's rows over all of them (ties in each list's order
    broken by the primary key), and readers who see different parts of it. Built once for the module (every test
    only reads it: ``tests/module_rows.py``), not once per test. A transactional test (a browser's) builds its own
    with ``build_world``."""
    return refuse_transactional(request, world_of_the_module)


@pytest.fixture(scope="module")
def world_of_the_module(django_db_setup, django_db_blocker) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with rows_for_the_module(django_db_blocker, build_world) as built:
        yield built


def build_world() -> dict[str, Any]:
    """What ``world`` holds, built in the calling test's database."""
    outsider, expert = UserFactory(role="moderator"), UserFactory(role="moderator")
    _library(outsider, expert)
    expert.groups.add(Group.objects.get(name="experts"))
    for i in range(6):
        DecidedVideoFactory(title=f"decided {i}")
    no_group = UserFactory(role="moderator")
    for reader in (outsider, expert, no_group):  # every screen's permission, their visibility unchanged
        reader.groups.add(Group.objects.get(name="labeler"), Group.objects.get(name="policy_editor"))
    admin = UserFactory(role="admin")
    videos = list(Video.objects.order_by("pk"))
    now = timezone.now()

    proposal = TagProposal.objects.create(name="kitty", key="kitty", video=videos[0])
    for video in videos:
        TagProposalSighting.objects.create(proposal=proposal, video=video, phrase="kitty")
    other = TagProposal.objects.create(name="puppy", key="puppy", video=videos[1])
    TagProposalSighting.objects.create(proposal=other, video=videos[1], phrase="puppy")  # not the kitty's
    # Half of them seen at one instant: the order's tie is the primary key's.
    TagProposalSighting.objects.filter(pk__in=[s.pk for s in TagProposalSighting.objects.all()[::2]]).update(
        created_at=now
    )

    hub = videos[0]  # "plain": in a pair with every other video, one way or the other
    pairs: set[tuple[int, int]] = set()
    for i, video in enumerate(videos):
        for original in (videos[(i + 1) % len(videos)], videos[(i + 3) % len(videos)], hub):
            if video != original and (video.pk, original.pk) not in pairs and (original.pk, video.pk) not in pairs:
                pairs.add((video.pk, original.pk))
    for n, (video_id, original_id) in enumerate(sorted(pairs)):
        candidate = ReproCandidate.objects.create(
            video_id=video_id,
            original_id=original_id,
            # The hub's later copies all likely ones (its "copies" side past the cap below), at one score.
            score=0.9 if original_id == hub.pk else (0.2, 0.5, 0.5, 0.9)[n % 4],
        )
        if n % 3 == 0:
            verdict = (ReproCandidate.Label.REPRODUCTION, ReproCandidate.Label.UNRELATED)[n % 2]
            PairReview.objects.create(candidate=candidate, reviewer=admin, verdict=verdict)
        elif n % 5 == 1:  # under a live claim: not waiting
            ReproCandidate.objects.filter(pk=candidate.pk).update(
                claimed_by=admin, claimed_at=now, lease_expires_at=now + timedelta(minutes=10)
            )
        elif n % 5 == 2:  # a lapsed claim: waiting again
            ReproCandidate.objects.filter(pk=candidate.pk).update(
                claimed_by=admin, claimed_at=now, lease_expires_at=now - timedelta(minutes=10)
            )
    reviews = list(PairReview.objects.order_by("pk"))
    PairReview.objects.filter(pk__in=[r.pk for r in reviews[::3]]).update(created_at=now)  # ties

    statuses = list(CotCorrection.Status.values)
    for n, decision in enumerate(Decision.objects.order_by("pk")):
        Tag2CotTask.objects.create(
            decision=decision,
            video=decision.video,
            policy_version=decision.policy_version,
            target_label="夸大商品功效",
            label_source="review",
            status=(Tag2CotTask.Status.OPEN, Tag2CotTask.Status.DONE)[n % 2],
        )
        Adjudication.objects.create(
            video=decision.video,
            decision=decision,
            kind=DisagreementRule.Kind.REPORTED_PASS,
            reason="users report it",
            status=(Adjudication.Status.OPEN, Adjudication.Status.DECIDED)[n % 3 == 0],
        )
        if n % 3:
            author = outsider if n % 4 == 1 else expert if n % 4 == 2 else admin
            CotCorrectionFactory(decision=decision, status=statuses[n % len(statuses)], author=author)
    for model in (Tag2CotTask, Adjudication, Decision):
        model.objects.filter(pk__in=[r.pk for r in model.objects.order_by("pk")[::4]]).update(created_at=now)
    return {
        "readers": {"outsider": outsider, "expert": expert, "no group": no_group, "admin": admin},
        "proposal": proposal,
        "hub": hub,
    }


# Each converted list: (its rows for a reader, the window it is read from), as its view builds them.
Lists = dict[str, Callable[[Any], tuple[QuerySet[Any], QuerySet[Any]]]]


def _lists(world: dict[str, Any]) -> Lists:
    proposal, hub = world["proposal"], world["hub"]

    def sightings(user: Any) -> tuple[QuerySet[Any], QuerySet[Any]]:
        from moderation.media.selectors import video_open_to_q

        window = TagProposalSighting.objects.filter(proposal=proposal)
        rows = window.filter(video_open_to_q(user=user, field="video_id")).order_by("-created_at", "-pk")
        return rows, window

    def pair_queue(user: Any) -> tuple[QuerySet[Any], QuerySet[Any]]:
        waiting = repro_selectors.pair_queue_pending()
        return repro_selectors.pairs_open_to(user=user, pairs=waiting), waiting

    def reviewed(user: Any) -> tuple[QuerySet[Any], QuerySet[Any]]:
        decided = repro_selectors.pairs_reviewed()
        return repro_selectors.pairs_open_to(user=user, pairs=decided), decided

    def video_pairs(side: str) -> Callable[[Any], tuple[QuerySet[Any], QuerySet[Any]]]:
        return lambda user: (
            repro_selectors.pairs_of_video(video=hub, user=user, side=side),
            repro_selectors.pairs_touching(video=hub),
        )

    def corrections(status: str, by: str) -> Callable[[Any], tuple[QuerySet[Any], QuerySet[Any]]]:
        return lambda user: (
            annotation_selectors.correction_candidates(status=status, user=user, by=by),
            annotation_selectors.correction_candidates(status=status),
        )

    def tag2cot(status: str) -> Callable[[Any], tuple[QuerySet[Any], QuerySet[Any]]]:
        return lambda user: (
            annotation_selectors.tag2cot_tasks(status=status, user=user),
            annotation_selectors.tag2cot_tasks(status=status),
        )

    def adjudications(status: str) -> Callable[[Any], tuple[QuerySet[Any], QuerySet[Any]]]:
        return lambda user: (
            annotation_selectors.adjudications(status=status, user=user),
            annotation_selectors.adjudications(status=status),
        )

    lists: Lists = {"sightings": sightings, "pair queue": pair_queue, "reviewed pairs": reviewed}
    for side in ("all", "copies", "originals"):
        lists[f"video pairs {side}"] = video_pairs(side)
    # Each branch of the selector's filters once: no status, "none" (not corrected: an anti-join) and one status; the
    # other three statuses (draft, accepted, rejected) take the same branch (``correction__status=status``) with
    # another constant, and walked the same window paths again: 9 of the 30 lists, ~15 % of this test, for nothing
    # that "submitted" (the screens' own "waiting for a second labeler" filter) does not walk.
    for status in ("", "none", CotCorrection.Status.SUBMITTED):
        for by in ("", "me", "others"):
            lists[f"corrections {status or 'all'} {by}"] = corrections(status, by)
    for status in ("all", *Tag2CotTask.Status.values):
        lists[f"tag2cot {status}"] = tag2cot(status)
    for status in ("all", *Adjudication.Status.values):
        lists[f"adjudications {status}"] = adjudications(status)
    return lists


def _pages(paginator: Paginator) -> list[tuple[list[int], bool]]:
    """Every page's row ids and whether a next page is offered, walking "next"."""
    pages, number = [], 1
    while True:
        page = paginator.get_page(number)
        pages.append(([row.pk for row in page.object_list], page.has_next()))
        if not page.has_next():
            return pages
        number = page.next_page_number()


@pytest.mark.parametrize("max_window", [16_000, 12, 4])
def test_each_lists_pages_are_those_of_djangos_paginator(world: dict[str, Any], monkeypatch, max_window: int) -> None:  # type: ignore[no-untyped-def]
    # 16k: stretch after stretch of the window; 12: one window then the list; 4: the list alone
    monkeypatch.setattr(pagination, "_window_limit", lambda model: max_window)
    seen: dict[str, set[int]] = {}
    for name, rows_for in _lists(world).items():
        for reader, user in world["readers"].items():
            rows, window = rows_for(user)
            # Django's paginator over the queryset's rows read once: a queryset's page is the slice of its rows in
            # its order (a total order, ending with the primary key), so these are the pages it draws with a
            # COUNT(*) and a read per page, without a query per page for each page size and reader.
            ordered = list(rows.all())  # a copy: ``rows`` itself stays unread
            total = len(ordered)
            seen.setdefault(name, set()).add(total)
            for per_page, cap in ((2, 3), (3, 100), (50, 1000)):
                assert _pages(WindowPaginator(rows, per_page, count_cap=cap, window=window)) == _pages(
                    Paginator(ordered, per_page)
                ), (name, reader, per_page, cap)
                fresh = WindowPaginator(rows, per_page, count_cap=cap, window=window)
                assert (fresh.count, fresh.count_is_exact) == ((total, True) if total <= cap else (cap, False)), (
                    name,
                    reader,
                )
    # The readers see different parts of each list that has rows about restricted videos (the test can fail).
    for name in ("sightings", "pair queue", "reviewed pairs", "corrections all ", "tag2cot all", "adjudications all"):
        assert len(seen[name]) > 1 and min(seen[name]) > 3, (name, seen[name])


def _screens(world: dict[str, Any]) -> list[str]:
    hub, proposal = world["hub"], world["proposal"]
    pairs = reverse("moderation:video_repro_pairs", args=[hub.pk])
    screens = [
        reverse("moderation:tag_proposal_sightings", args=[proposal.pk]),
        reverse("moderation:repro_queue"),
        reverse("moderation:repro_reviewed"),
        pairs,
        pairs + "?side=copies",
        pairs + "?side=originals",
    ]
    corrections = reverse("annotation:correction_list")
    screens += [corrections, corrections + "?status=none", corrections + "?status=submitted&by=others"]
    screens += [reverse("annotation:tag2cot_list"), reverse("annotation:tag2cot_list") + "?status=all"]
    screens += [reverse("annotation:adjudication_list"), reverse("annotation:adjudication_list") + "?status=all"]
    return screens


def _django_paginator(rows: Any, per_page: int, **kwargs: Any) -> Paginator:
    kwargs.pop("window", None)
    return Paginator(rows, per_page)


def _patch_pagers(monkeypatch: Any, paginator: Any) -> None:
    import moderation.reproduction.views
    import workbench.pagination

    monkeypatch.setattr(moderation.reproduction.views, "WindowPaginator", paginator)
    monkeypatch.setattr("annotation.views.WindowPaginator", paginator)
    # The sightings' selector imports it when called.
    monkeypatch.setattr(workbench.pagination, "WindowPaginator", paginator)


def _page_html(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.content.decode()
    # What differs from one request to the next whatever the paginator: CSRF tokens.
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    return re.sub(r'"X-CSRFToken": ?"[^"]*"', "", html)


def _walk(client: Any, url: str) -> list[str]:
    """Each page of the screen at ``url``, following its "next" links."""
    pages = []
    while url:
        html = _page_html(client, url)
        pages.append(html)
        found = re.search(r'<a href="([^"]*)"[^>]*>(?:next|older) →</a>', html)
        nxt = found.group(1).replace("&amp;", "&") if found else ""
        url = (url.split("?")[0] + nxt if nxt.startswith("?") else nxt) if nxt else ""
    return pages


def test_each_screen_is_the_page_djangos_paginator_drew_below_the_cap(
    world: dict[str, Any], client, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("moderation.reproduction.views.PAIRS_PER_PAGE", 4)
    monkeypatch.setattr("annotation.views.LIST_PAGE", 4)
    monkeypatch.setattr("moderation.tagging.selectors.SIGHTINGS_PAGE", 4)
    monkeypatch.setattr(pagination, "_window_limit", lambda model: 16_000)
    for reader in ("outsider", "expert", "admin"):
        client.force_login(world["readers"][reader])
        for url in _screens(world):
            windowed = _walk(client, url)
            with monkeypatch.context() as patched:
                _patch_pagers(patched, _django_paginator)
                expected = _walk(client, url)
            assert windowed == expected, (reader, url)
    # The screens page: pairs at 4 a page and sightings at 4 have several.
    client.force_login(world["readers"]["admin"])
    assert len(_walk(client, reverse("moderation:repro_reviewed"))) > 1
    assert len(_walk(client, reverse("annotation:correction_list"))) > 1
    assert len(_walk(client, reverse("moderation:tag_proposal_sightings", args=[world["proposal"].pk]))) > 1


def test_past_the_cap_each_screen_says_how_far_it_counted(world: dict[str, Any], client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pagination, "COUNT_CAP", 5)
    monkeypatch.setattr("moderation.reproduction.views.PAIRS_PER_PAGE", 2)
    monkeypatch.setattr("annotation.views.LIST_PAGE", 2)
    monkeypatch.setattr("moderation.tagging.selectors.SIGHTINGS_PAGE", 2)
    admin = world["readers"]["admin"]
    client.force_login(admin)
    hub, proposal = world["hub"], world["proposal"]
    pairs = reverse("moderation:video_repro_pairs", args=[hub.pk])
    said = {
        reverse("moderation:repro_queue"): "page 1 (5+ pairs waiting)",
        reverse("moderation:repro_reviewed"): "page 1 (5+ reviewed pairs)",
        pairs: "page 1 (5+ pairs)",
        pairs + "?side=copies": "page 1 (5+ pairs)",
        reverse("annotation:tag2cot_list") + "?status=all": "page 1 (5+ tasks)",
        reverse("annotation:adjudication_list") + "?status=all": "page 1 (5+ adjudications)",
        reverse("annotation:correction_list"): "page 1 (5+ decisions)",
        reverse("moderation:tag_proposal_sightings", args=[proposal.pk]): "videos 1–2 of 5+",
    }
    for url, words in said.items():
        html = _page_html(client, url)
        assert words in html, (url, words)
        assert "last »" not in html and re.search(r"(next|older) →</a>", html), url
    copies = _page_html(client, pairs + "?side=copies")
    assert "only the 5+ later uploads" in copies
    # The last page, once reached, is counted exactly again, and says so as before.
    total = Adjudication.objects.count()
    pages = -(-total // 2)
    last = _page_html(client, reverse("annotation:adjudication_list") + "?status=all&page=999")
    assert f"page {pages} of {pages} ({total} adjudications)" in last and "next →" not in last


@pytest.mark.parametrize("exact", [False, True])
def test_the_pager_writes_the_capped_count_as_1000_plus(exact: bool) -> None:
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    paginator = SimpleNamespace(count=1000, count_is_exact=exact, num_pages=20)
    page = SimpleNamespace(
        number=3, paginator=paginator, has_other_pages=True, has_previous=True, has_next=True,
        previous_page_number=2, next_page_number=4,
    )  # fmt: skip
    html = render_to_string("_pager.html", {"page": page, "noun": "tasks"})
    if exact:
        assert "page 3 of 20 (1000 tasks)" in html and "page=20" in html
    else:
        assert "page 3 (1,000+ tasks)" in html and "last »" not in html and "page=4" in html
