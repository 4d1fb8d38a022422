"""A paginator for long lists whose rows pass a costly per-row filter (the visibility rule,
``moderation.media.selectors.video_open_to_q``), shared by the HTML lists and the API's page-number lists.

Django's ``Paginator`` counts every row the queryset finds (``COUNT(*)``) and then reads the page (``OFFSET`` /
``LIMIT``): with the rule in the queryset, PostgreSQL builds the rule's hashed sets over the whole library for each
(0.3-1 s at 100k videos), whatever the page. ``WindowPaginator`` reads the page's rows as ids first, from a window
of the table's first rows in the list's order, walked by an index and filtered row by row:

- the queryset must be ordered on a total order that ends with the primary key (``-created_at, -pk``); the
  window is the table's first ``w`` ids in that order, every filter aside, so the rows the queryset finds in it
  are exactly its first rows (any other row comes later in the order). A list whose rows are a known part of the
  table (one proposal's sightings, the open tasks) passes that part as ``window``: the list before its costly
  filter, walked by an index on its filter and order (the rows the queryset finds must all be in it). Where the
  window holds too few of them,
  the next stretch of the table is read, as large as all before it, then the queryset itself (what Django's
  paginator did, once);
- the page's ids are read from a window about twice the rows up to the page's end and one more ("next" is known
  from that row), filtered and sorted; the count is counted over its own window's stretches as far as
  ``count_cap`` rows, each stretch's rows filtered one by one until ``count_cap + 1`` pass, unsorted (a count
  needs no order). Past the cap the list says "1,000+" (``count_is_exact`` is False) and the pager has no last
  page. A page at or past the cap, a page whose window holds too few of the list's rows (a reader who sees few
  of the newest), a table too small for the count's window or a list not windowed reads its ids once, as far
  as the page and the cap go, and counts them;
- the page's rows are then read by their ids, with the queryset's own columns (annotations included), so a
  column that applies the rule again (the video list's ``closed_to_uploader``) is evaluated for the page only.

The rows, their order and their columns are those Django's paginator gave (``tests/workbench/test_pagination.py``);
what changes is the count past the cap."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connection
from django.db.models import QuerySet, Subquery
from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response

COUNT_CAP = 1000
# The first window is this many times the ids needed (most of a library is open to most readers); each next
# stretch doubles it. Row by row the rule costs ~11 us a row, its hashed plan over the whole table ~2.5 us a row of
# the table: past ``MAX_WINDOW`` rows (a reader who sees few of the newest videos) the queryset is read whole.
WINDOW_FACTOR = 2
MAX_WINDOW = 16_000
# No list holds more rows than this: a page number past it is past the end (its page's rows are never read).
MAX_ROWS = 2**31


def _window_limit(model: Any) -> float:
    """The most rows a window may hold: ``MAX_WINDOW``, and a quarter of the table (PostgreSQL's estimate of its
    rows, ``pg_class.reltuples``): over a larger part of a small table the rule's hashed plan over all of it is
    cheaper than row by row (a library of 2,000 videos: 25 ms, against 37 ms through a window of all of them)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    estimate = float(row[0]) if row else -1.0
    if estimate <= 0:  # never analysed (-1), or not since it was empty (0): unknown
        return MAX_WINDOW
    return min(MAX_WINDOW, estimate / 4)


@dataclass(frozen=True)
class CappedCount:
    """A count of rows counted as far as a cap (``capped_count``; a paginator's, ``of``): ``n`` rows, all of them
    when ``exact``, else a lower bound, which a heading prints "1,000+" as the pager does."""

    n: int
    exact: bool = True

    def __str__(self) -> str:
        return str(self.n) if self.exact else f"{self.n:,}+"

    @classmethod
    def of(cls, paginator: Paginator) -> CappedCount:
        """A paginator's count: ``WindowPaginator``'s as far as it counted, Django's (every row) exact."""
        return cls(paginator.count, getattr(paginator, "count_is_exact", True))


def capped_count(
    rows: QuerySet[Any], *, window: QuerySet[Any] | None = None, cap: int | None = None, filtered: bool = True
) -> CappedCount:
    """How many rows ``rows`` finds, counted as ``WindowPaginator`` counts its list (``window``, ``cap``: as there):
    its rows in a window of the table (or of ``window``) in its order, filtered one by one until ``cap + 1`` pass,
    rather than a ``COUNT(*)`` that applies a costly filter (the visibility rule) to every row of the table; where
    fewer pass in that window, the next stretches, then the queryset itself. ``filtered`` False:
    ``rows`` carries no such filter (a reader who sees every video), and is counted as far as the cap directly,
    ``COUNT(*)`` over its first ``cap + 1`` rows (no order, no window)."""
    cap = COUNT_CAP if cap is None else cap
    if not filtered:
        n = rows.order_by()[: cap + 1].count()
        return CappedCount(min(n, cap), n <= cap)
    return CappedCount.of(WindowPaginator(rows, 1, window=window, count_cap=cap))


class WindowPage(Page):
    """A page that knows whether another follows from the row read past it, not from a total count."""

    paginator: WindowPaginator

    def __init__(self, object_list: Any, number: int, paginator: WindowPaginator, *, has_next: bool) -> None:
        super().__init__(object_list, number, paginator)
        self._has_next = has_next

    def has_next(self) -> bool:
        return self._has_next

    def end_index(self) -> int:
        return self.start_index() + len(self.object_list) - 1 if self.object_list else 0


class WindowPaginator(Paginator):
    """``Paginator`` for an ordered queryset (``-created_at, -pk``): see the module. ``count`` is exact up to
    ``count_cap`` and a lower bound past it (``count_is_exact``); ``num_pages`` is then the pages counted so far."""

    def __init__(
        self,
        object_list: QuerySet[Any],
        per_page: int,
        *,
        count_cap: int | None = None,
        windowed: bool = True,
        window: QuerySet[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.rows = object_list
        # The rows the window is read from, in the list's order (``window``; default every row of the table).
        self.window = window
        self.count_cap = COUNT_CAP if count_cap is None else count_cap
        # False where the queryset's own filter finds a few rows cheaply (a platform's own videos): the window
        # would be read to its end for nothing; the ids are then read from the queryset, the count still capped.
        self.windowed = windowed
        self._seen: tuple[int, bool] | None = None  # (rows counted, whether that is all of them)

    @cached_property
    def _ordering(self) -> Sequence[str]:
        order = [str(o) for o in self.rows.query.order_by]
        if not order or order[-1].lstrip("-") not in ("pk", "id", self.rows.model._meta.pk.name):
            raise ValueError(f"WindowPaginator needs an order that ends with the primary key, got {order!r}")
        return order

    @cached_property
    def _most(self) -> float:
        """The most rows a window may hold (``_window_limit``); 0 where the list is not windowed."""
        return _window_limit(self.rows.model) if self.windowed else 0

    def _table(self) -> QuerySet[Any]:
        """The rows the window is read from, in the list's order."""
        walked = self.rows.model._base_manager.all() if self.window is None else self.window
        return walked.order_by(*self._ordering)

    def _stretches(self, limit: int) -> Iterator[tuple[QuerySet[Any], bool]]:
        """The queryset's rows in the table's first ``WINDOW_FACTOR * limit`` rows, then in each next stretch as
        long as all before it (each row of the table in one stretch), up to the window's limit: each stretch's
        rows, and whether the stretch reached the end of the table. Where the caller needs more, it reads the
        queryset itself."""
        qs, table = self.rows, self._table()
        start, end = 0, WINDOW_FACTOR * limit
        while end <= self._most:
            stretch = qs.filter(pk__in=Subquery(table.values("pk")[start:end]))
            yield stretch, False
            if not table[end - 1 : end].exists():
                yield qs.none(), True
                return
            start, end = end, 2 * end

    def _ids(self, limit: int) -> tuple[list[Any], bool]:
        """The queryset's first ``limit`` ids in its order, and whether they are all of its rows: read stretch by
        stretch (``_stretches``), each stretch's filtered rows sorted; then from the queryset itself."""
        ids: list[Any] = []
        for stretch, at_end in self._stretches(limit):
            if at_end:
                return ids, True
            ids += stretch.values_list("pk", flat=True)[: limit - len(ids)]
            if len(ids) == limit:
                return ids, False
        ids = list(self.rows.values_list("pk", flat=True)[:limit])
        return ids, len(ids) < limit

    def _short_window_ids(self, limit: int) -> tuple[list[Any], bool] | None:
        """``_ids(limit)`` from the first window alone (``WINDOW_FACTOR * limit`` rows); None where it holds fewer
        and the table goes on past it (or the list has no window)."""
        stretches = self._stretches(limit)
        first = next(stretches, None)
        if first is None:
            return None
        ids = list(first[0].values_list("pk", flat=True)[:limit])
        if len(ids) == limit:
            return ids, False
        _, at_end = next(stretches, (None, False))
        return (ids, True) if at_end else None

    def _counted(self) -> tuple[int, bool]:
        """The rows counted as far as ``count_cap``, and whether that is all of them: the stretches ``_ids`` reads
        for ``count_cap + 1`` ids, each stretch's rows filtered one by one until enough pass (no order: ``COUNT(*)``
        over ``LIMIT``), where ``_ids`` filters all of a stretch's rows to sort them; then the queryset itself."""
        limit, n = self.count_cap + 1, 0
        for stretch, at_end in self._stretches(limit):
            if at_end:
                return n, True
            n += stretch.order_by()[: limit - n].count()
            if n == limit:
                return self.count_cap, False
        n = self.rows.order_by()[:limit].count()
        return min(n, self.count_cap), n < limit

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        """Rows counted: every one up to ``count_cap`` (or as far as the page read), a lower bound past it."""
        if self._seen is None:
            self._seen = self._counted()
        return self._seen[0]

    @property
    def count_is_exact(self) -> bool:
        self.count  # noqa: B018 (counts)
        assert self._seen is not None
        return self._seen[1]

    def validate_number(self, number: Any) -> int:
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger("That page number is not an integer") from exc
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        if number > MAX_ROWS // self.per_page:
            # Past any list's end: its LIMIT (``page=10**30``) was past PostgreSQL's bigint, a 500.
            raise EmptyPage("That page contains no results")
        return number

    def page(self, number: Any) -> WindowPage:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        needed = bottom + self.per_page + 1  # the page's rows and one more: whether a next page follows
        if needed > self.count_cap or WINDOW_FACTOR * (self.count_cap + 1) > self._most:
            # A page at or past the cap, or a count the window cannot hold (a small table, a list not windowed):
            # one read of the ids, as far as the page and the cap go, gives both.
            ids, complete = self._ids(max(needed, self.count_cap + 1))
            self._seen = (len(ids) - (0 if complete else 1), complete)
        elif (short := self._short_window_ids(needed)) is not None:
            # The page's ids from a window of about its own size, in order; the count from the stretches walked
            # as far as the cap, unsorted (nothing more to count where the page reached the list's end).
            ids, complete = short
            self._seen = (len(ids), True) if complete else self._counted()
        else:
            # Too few of the list's rows in the page's window (a reader who sees few of the newest rows): one read,
            # as far as the cap goes, rather than two walks over the same rows.
            ids, complete = self._ids(self.count_cap + 1)
            self._seen = (len(ids) - (0 if complete else 1), complete)
        self.__dict__.pop("count", None)
        self.__dict__.pop("num_pages", None)
        page_ids = ids[bottom : bottom + self.per_page]
        if not page_ids and number > 1:
            raise EmptyPage("That page contains no results")
        order = {pk: i for i, pk in enumerate(page_ids)}
        rows = sorted(self.rows.filter(pk__in=page_ids), key=lambda row: order[row.pk])
        return WindowPage(rows, number, self, has_next=len(ids) > bottom + self.per_page)

    def get_page(self, number: Any) -> WindowPage:
        """As ``Paginator.get_page``: a number that is none is the first page; one below 1 or past the end, the last
        page (past the count's cap: the last page counted)."""
        try:
            return self.page(number)
        except PageNotAnInteger:
            return self.page(1)
        except EmptyPage:
            return self.page(max(self.num_pages, 1))


class WindowPageNumberPagination(PageNumberPagination):
    """The API's page-number lists on ``WindowPaginator``: ``count`` is exact up to 1,000 results, past that a
    lower bound, and ``count_is_exact`` says which; ``next`` is null on the last page, as before."""

    django_paginator_class: Any = WindowPaginator

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        """As DRF's; a view whose ``list_windowed()`` is False (a platform's list of its own videos) reads its ids
        from the queryset itself (``WindowPaginator``'s ``windowed``)."""
        windowed = bool(getattr(view, "list_windowed", lambda: True)())
        self.django_paginator_class = functools.partial(WindowPaginator, windowed=windowed)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None
        paginator = cast(WindowPaginator, self.page.paginator)
        return Response(
            {
                "count": paginator.count,
                "count_is_exact": paginator.count_is_exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        described = super().get_paginated_response_schema(schema)
        described["required"] = [*described.get("required", []), "count_is_exact"]
        described["properties"]["count"] = {
            "type": "integer",
            "example": 123,
            "description": f"the number of results, counted as far as {COUNT_CAP}: past that, a lower bound",
        }
        described["properties"]["count_is_exact"] = {
            "type": "boolean",
            "description": f"false when there are more than {COUNT_CAP} results and ``count`` is a lower bound",
        }
        return described


def _ordering_field(queryset: Any, order: str) -> Any:
    """The model field named by ``order`` ("-created_at") of ``queryset``'s model, None for a lookup across models."""
    try:
        return queryset.model._meta.get_field(order.lstrip("-"))
    except (AttributeError, FieldDoesNotExist):
        return None


class WindowCursorPagination(CursorPagination):
    """``CursorPagination`` (oldest first) whose page is read, as ``WindowPaginator``'s, from a window of the table's
    rows past the cursor's position in the list's order, every filter aside: where the window gives a full page
    and the row past it, that is the page the whole queryset gave; where it gives less and the table goes on past
    it, the page is read from the whole queryset (what DRF did). A page read backwards (a ``previous`` link), or an
    order that is not ascending on a column then the primary key, is read as DRF reads it."""

    invalid_cursor_message = (
        "Invalid cursor: pass the “next” or “previous” link of a page as it was given, or leave cursor out for the "
        "first page."
    )
    # The model field the list is ordered on first, whose value a cursor's position is (``decode_cursor``).
    _position_field: Any = None

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        ordering = list(self.get_ordering(request, queryset, view))
        self._position_field = _ordering_field(queryset, ordering[0]) if ordering else None
        cursor = self.decode_cursor(request)  # a bad cursor: DRF's 404
        windowed = (
            isinstance(queryset, QuerySet)
            and (cursor is None or not cursor.reverse)
            and len(ordering) == 2
            and not ordering[0].startswith("-")
            and ordering[1] in ("pk", "id")
        )
        if windowed:
            table = queryset.model._base_manager.order_by(*ordering)
            offset = 0
            if cursor is not None and cursor.position is not None:
                table = table.filter(**{f"{ordering[0]}__gt": cursor.position})
                offset = cursor.offset
            window = WINDOW_FACTOR * (offset + (self.get_page_size(request) or 0) + 1)
            if window <= _window_limit(queryset.model):
                in_window = queryset.filter(pk__in=Subquery(table.values("pk")[:window]))
                page: Any = super().paginate_queryset(in_window, request, view)
                if self.has_next or not table[window - 1 : window].exists():
                    return page
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Any) -> Any:
        """DRF's cursor, its position read as a value of the ordering's field: a position is the text of the last
        row's value (a time), and one that is no such value (a cursor edited by hand, "p=garbage") reached the
        database filter as Django's ``ValidationError``, a 500. Such a cursor is DRF's 404 for a bad cursor, and a
        time without a zone is read in UTC."""
        cursor = super().decode_cursor(request)
        field = self._position_field
        if cursor is None or cursor.position is None or field is None:
            return cursor
        try:
            value = field.to_python(cursor.position)
        except DjangoValidationError:
            raise NotFound(self.invalid_cursor_message) from None
        if value is None:
            raise NotFound(self.invalid_cursor_message)
        if isinstance(value, datetime) and timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        return cursor._replace(position=value)
