"""``WindowPaginator`` (``workbench/pagination.py``) gives the rows, the order and the columns Django's paginator gave,
page by page, for every case of the visibility rule (``tests/moderation/media/test_visibility_sql_cache.py``'s
library) and every kind of reader, through each of its paths (the first window, a larger one, the whole queryset);
only the count past its cap differs, and says so."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.paginator import Paginator
from django.urls import reverse

from moderation.media import selectors
from moderation.media.models import Video
from moderation.policies.models import PolicyVersion
from tests.factories import DecisionFactory, UserFactory, VideoFactory
from tests.moderation.media.test_visibility_sql_cache import _library
from tests.module_rows import refuse_transactional, rows_for_the_module
from workbench import pagination
from workbench.pagination import WindowPaginator

pytestmark = pytest.mark.django_db


def _pages(paginator: Paginator) -> list[tuple[list[tuple[int, bool]], bool]]:
    """Every page's rows (id and ``closed_to_uploader``) and whether a next page is offered, walking "next"."""
    pages, number = [], 1
    while True:
        page = paginator.get_page(number)
        pages.append(([(v.pk, v.closed_to_uploader) for v in page.object_list], page.has_next()))
        if not page.has_next():
            return pages
        number = page.next_page_number()


@pytest.fixture
def readers(request: pytest.FixtureRequest, readers_of_the_module: dict[str, Any]) -> dict[str, Any]:
    """The rule's library, newer decided videos, and readers who see different parts of it: built once for the
    module (its tests only read them; what one adds is undone when it ends: ``tests/module_rows.py``)."""
    return refuse_transactional(request, readers_of_the_module)


@pytest.fixture(scope="module")
def readers_of_the_module(django_db_setup, django_db_blocker) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with rows_for_the_module(django_db_blocker, _library_and_readers) as built:
        yield built


def _library_and_readers() -> dict[str, Any]:
    outsider, expert = UserFactory(role="moderator"), UserFactory(role="moderator")
    _library(outsider, expert)
    expert.groups.add(Group.objects.get(name="experts"))
    policy_version = PolicyVersion.objects.order_by("pk").first()
    for i in range(12):  # newer than the library's cases
        DecisionFactory(video=VideoFactory(title=f"filler {i}"), policy_version=policy_version)
    return {
        "outsider": outsider,
        "expert": expert,
        "no group": UserFactory(role="moderator"),
        "admin": UserFactory(role="admin"),
        "anonymous": AnonymousUser(),
    }


@pytest.mark.parametrize("max_window", [16_000, 12, 4])
def test_pages_are_those_of_djangos_paginator(readers: dict[str, Any], monkeypatch, max_window: int) -> None:  # type: ignore[no-untyped-def]
    # 16k: stretch after stretch; 12: one window then the queryset; 4: none
    monkeypatch.setattr(pagination, "_window_limit", lambda model: max_window)
    for name, user in readers.items():
        listed = selectors.videos_listed_for(user=user, qs=selectors.video_list())
        # Django's paginator over the list's rows read once (with their columns): a queryset's page is the slice of
        # its rows in its order (a total order, ending with the primary key), so these are the pages it draws with a
        # query per page, without those queries for each page size.
        rows = list(listed.all())  # a copy: ``listed`` itself stays unread
        for per_page, cap in ((2, 3), (3, 100), (50, 1000)):
            expected = _pages(Paginator(rows, per_page))
            windowed = WindowPaginator(listed, per_page, count_cap=cap)
            assert _pages(windowed) == expected, (name, per_page, cap)
            unwindowed = WindowPaginator(listed, per_page, count_cap=cap, windowed=False)  # a platform's list
            assert _pages(unwindowed) == expected, (name, per_page, cap)
            total = sum(len(rows) for rows, _ in expected)
            fresh = WindowPaginator(listed, per_page, count_cap=cap)
            assert (fresh.count, fresh.count_is_exact) == ((total, True) if total <= cap else (cap, False)), name


def test_a_page_past_the_end_is_the_last_and_a_bad_number_the_first(readers: dict[str, Any]) -> None:
    listed = selectors.videos_listed_for(user=readers["outsider"], qs=selectors.video_list())
    expected = Paginator(listed, 4)
    for number in ("999", "x", "0", "-1", None, "2"):
        windowed = WindowPaginator(listed, 4, count_cap=100)
        assert [v.pk for v in windowed.get_page(number)] == [v.pk for v in expected.get_page(number)], number
    capped = WindowPaginator(listed, 4, count_cap=2)
    last = capped.get_page("999")  # past the end: the cap is read past, so the count is exact again
    assert capped.count_is_exact and capped.count == expected.count
    assert not last.has_next() and last.end_index() == expected.count
    below = WindowPaginator(listed, 4, count_cap=2).get_page("0")  # below 1: the last page counted
    assert below.number == 1 and below.has_next() and not below.paginator.count_is_exact
    assert below.paginator.count == 4  # counted as far as the page read: its rows and one more


def test_an_order_without_the_primary_key_last_is_refused() -> None:
    with pytest.raises(ValueError, match="primary key"):
        WindowPaginator(Video.objects.order_by("-created_at"), 10).get_page(1)


def test_video_list_says_how_far_it_counted(readers: dict[str, Any], client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pagination, "COUNT_CAP", 5)
    client.force_login(readers["admin"])
    monkeypatch.setattr("moderation.media.views.VIDEOS_PER_PAGE", 3)
    first = client.get(reverse("moderation:video_list")).content.decode()
    assert "page 1 (5+ videos)" in first and "page=2" in first
    last = client.get(reverse("moderation:video_list") + "?page=999").content.decode()
    count = Video.objects.count()
    pages = -(-count // 3)
    assert f"page {pages} of {pages} ({count} videos)" in last and "older →" not in last


def test_api_video_list_declares_and_gives_count_is_exact(readers: dict[str, Any], client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pagination, "COUNT_CAP", 5)
    monkeypatch.setattr(pagination.WindowPageNumberPagination, "page_size", 3)
    outsider = readers["outsider"]
    client.force_login(outsider)
    response = client.get(reverse("moderation:api-video-list"))
    body = response.json()
    visible = selectors.videos_open_to(user=outsider, qs=Video.objects.order_by("-created_at", "-pk"))
    assert [v["id"] for v in body["results"]] == list(visible.values_list("pk", flat=True)[:3])
    assert (body["count"], body["count_is_exact"]) == (5, False) and visible.count() > 5
    assert body["next"].endswith("?page=2") and body["previous"] is None
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    declared = schema["paths"]["/api/videos/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][declared["$ref"].rsplit("/", 1)[1]]
    assert set(body) == set(page["properties"]) and {"count", "count_is_exact", "results"} <= set(page["required"])
    assert page["properties"]["count_is_exact"]["type"] == "boolean"
    assert "lower bound" in page["properties"]["count"]["description"]


def _decision_pages(client, url: str) -> list[list[int]]:  # type: ignore[no-untyped-def]
    pages = []
    while url:
        body = client.get(url).json()
        pages.append([d["id"] for d in body["results"]])
        url = body["next"]
    return pages


@pytest.mark.parametrize("max_window", [16_000, 4])
def test_api_decision_pages_are_drfs(readers: dict[str, Any], client, monkeypatch, max_window: int) -> None:  # type: ignore[no-untyped-def]
    from moderation.inference.models import Decision

    monkeypatch.setattr(pagination, "_window_limit", lambda model: max_window)  # 4: no window, DRF's own reading
    for name in ("outsider", "expert", "admin"):
        client.force_login(readers[name])
        visible = selectors.videos_open_to(
            user=readers[name], qs=Decision.objects.order_by("created_at", "id"), field="video_id"
        )
        expected = list(visible.values_list("pk", flat=True))
        for size in (1, 2, 5, 100):
            pages = _decision_pages(client, reverse("moderation:api-decision-list") + f"?page_size={size}")
            assert [pk for page in pages for pk in page] == expected, (name, size)
            assert all(len(page) == size for page in pages[:-1]), (name, size)
        # A page read backwards (``previous``) is DRF's own.
        second = client.get(reverse("moderation:api-decision-list") + "?page_size=2").json()["next"]
        back = client.get(client.get(second).json()["previous"]).json()
        assert [d["id"] for d in back["results"]] == expected[:2], name


def test_a_window_holds_at_most_a_quarter_of_the_table(readers: dict[str, Any]) -> None:
    """Over a larger part of a small table the rule's plan over all of it is cheaper than row by row."""
    from django.db import connection

    # A table never analysed (created here, so autovacuum cannot have analysed it meanwhile): its size is unknown.
    probe = SimpleNamespace(_meta=SimpleNamespace(db_table="window_limit_probe"))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE window_limit_probe (id integer)")
    assert pagination._window_limit(probe) == pagination.MAX_WINDOW
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO window_limit_probe SELECT generate_series(1, 400)")
        cursor.execute("ANALYZE window_limit_probe")
    assert pagination._window_limit(probe) == 100
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE moderation_video")
    assert pagination._window_limit(Video) == Video.objects.count() / 4


@pytest.mark.parametrize("max_window", [16_000, 100, 12])
def test_a_page_read_from_its_own_window_and_counted_apart_is_djangos(  # type: ignore[no-untyped-def]
    readers: dict[str, Any], monkeypatch, max_window: int
) -> None:
    """A page below the cap reads its ids from a window of about its own size and counts apart (unsorted, as far as
    the cap). With the newest rows hidden from a moderator, the page's short window holds too few of them and the
    page reads its ids as far as the cap instead; a count alone walks its stretches, then the queryset. The pages
    and their counts stay Django's. 16k: stretch after stretch; 100: the count (cap 40: a first window of 82) from
    the queryset once its window holds too few; 12: windows for cap 3 only."""
    for i in range(10):  # the newest: not decided yet, open to their uploader and to admins only
        VideoFactory(title=f"hidden {i}")
    monkeypatch.setattr(pagination, "_window_limit", lambda model: max_window)
    for name in ("outsider", "expert", "admin"):
        listed = selectors.videos_listed_for(user=readers[name], qs=selectors.video_list())
        for per_page in (2, 3):
            expected = Paginator(listed, per_page)
            total = expected.count
            # Django's pages, each read once (a page keeps the rows it read) and compared for every cap.
            django_pages = [expected.page(number) for number in expected.page_range]
            for cap in (3, 7, 40):
                fresh = WindowPaginator(listed, per_page, count_cap=cap)  # counted before any page is read
                assert (fresh.count, fresh.count_is_exact) == (min(total, cap), total <= cap), (name, per_page, cap)
                paginator = WindowPaginator(listed, per_page, count_cap=cap)
                for number, django_page in enumerate(django_pages, start=1):
                    page = paginator.page(number)
                    key = (name, per_page, cap, number)
                    assert [(v.pk, v.closed_to_uploader) for v in page] == [
                        (v.pk, v.closed_to_uploader) for v in django_page
                    ], key
                    assert page.has_next() == django_page.has_next(), key
                    # Counted as far as the cap, or as far as the page read past it (its rows and one more).
                    reach = max(django_page.end_index() + 1, cap + 1)
                    assert (paginator.count, paginator.count_is_exact) == (min(total, reach - 1), total < reach), key


def test_the_count_below_the_cap_reads_its_window_unsorted(readers: dict[str, Any], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Page 1 of 2 rows under a cap of 40: the ids from a window of 2 × 3 rows, sorted; the count from a window of
    2 × 41 rows, unsorted and stopping at 41 (``COUNT(*)`` over ``LIMIT 41``)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(pagination, "_window_limit", lambda model: 16_000)
    listed = selectors.videos_listed_for(user=readers["admin"], qs=selectors.video_list())
    paginator = WindowPaginator(listed, 2, count_cap=40)
    with CaptureQueriesContext(connection) as ran:
        page = paginator.page(1)
    windows = [q["sql"] for q in ran.captured_queries if "IN (SELECT" in q["sql"]]
    assert len(windows) == 2, windows
    ids, count = windows
    assert "LIMIT 6)" in ids and "ORDER BY" in ids.rsplit("LIMIT 6)", 1)[1]  # the page's ids, in order
    assert "COUNT(*)" in count.split(" FROM ", 1)[0] and "LIMIT 82)" in count and "LIMIT 41" in count
    assert "ORDER BY" not in count.rsplit("LIMIT 82)", 1)[1]  # no sort for the count
    assert (paginator.count, paginator.count_is_exact) == (min(Video.objects.count(), 40), Video.objects.count() <= 40)
    assert [v.pk for v in page] == list(listed.values_list("pk", flat=True)[:2])
