"""A list screen's enum query parameter (``?status=``, ``?by=`` …) read in one place.

An unknown value used to be echoed as if it were a filter ("No banana adjudications." under an "Open" tab, the
items hidden) or silently dropped. Each screen declares its filter once (:class:`ListFilter`: its tabs, what no
parameter means, what an unknown one shows); :meth:`ListFilter.read` answers the value to filter by and, for a
value that names no tab, a message saying so while every item is listed under the "everything" tab. The view
answers 400 with that message (``FilterRead.http_status``) and the page draws the tabs with ``_list_filter.html``.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = "all"


@dataclass(frozen=True)
class ListFilter:
    """One enum query parameter of a list screen.

    ``tabs``: ``(value, name)`` as the screen's tabs show them, the "everything" tab (``everything``) among them;
    ``default``: the value no parameter means; ``noun``: what a value is ("adjudication status"), and
    ``everything_words``: what the everything tab shows ("every adjudication"), both for the message."""

    param: str
    noun: str
    tabs: tuple[tuple[str, str], ...]
    default: str
    everything: str = ALL
    everything_words: str = "every item"

    def __post_init__(self) -> None:
        values = self.values
        if self.default not in values or self.everything not in values:
            raise ValueError(f"The {self.param} filter's default and everything tab must be among its tabs.")

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _name in self.tabs)

    def read(self, raw: str | None) -> FilterRead:
        """The value to filter by: ``default`` when absent, a tab's value as given (spaces around it dropped), else
        ``everything`` with ``problem`` naming the unknown value (cut to 40 characters) and the known ones."""
        if raw is None:
            return FilterRead(spec=self, value=self.default)
        value = raw.strip()
        if value in self.values:
            return FilterRead(spec=self, value=value)
        known = ", ".join(f"“{v}”" for v in self.values if v)
        problem = f"There is no {self.noun} “{value[:40]}”: showing {self.everything_words}. Filter by {known}."
        return FilterRead(spec=self, value=self.everything, problem=problem)


@dataclass(frozen=True)
class FilterRead:
    """What :meth:`ListFilter.read` made of the query: ``value`` to filter by, ``problem`` ("" when none)."""

    spec: ListFilter
    value: str
    problem: str = ""

    @property
    def tabs(self) -> tuple[tuple[str, str], ...]:
        return self.spec.tabs

    @property
    def param(self) -> str:
        return self.spec.param

    @property
    def http_status(self) -> int:
        """400 when the value was unknown (the page still lists everything and says why), else 200."""
        return 400 if self.problem else 200
