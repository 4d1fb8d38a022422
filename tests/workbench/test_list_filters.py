"""The one reading of a list screen's enum query parameter (workbench/filters.py)."""

from __future__ import annotations

import pytest

from workbench.filters import ALL, ListFilter

STATUS = ListFilter(
    param="status",
    noun="thing status",
    tabs=(("open", "Open"), ("done", "Done"), (ALL, "All")),
    default="open",
    everything_words="every thing",
)


def test_absent_is_the_default_and_a_tab_is_taken_as_given() -> None:
    assert (STATUS.read(None).value, STATUS.read(None).problem, STATUS.read(None).http_status) == ("open", "", 200)
    assert STATUS.read(" done ").value == "done" and STATUS.read("all").value == ALL


@pytest.mark.parametrize("raw", ["banana", "", "Open", "x" * 500])
def test_an_unknown_value_shows_everything_and_says_so(raw: str) -> None:
    read = STATUS.read(raw)
    assert read.value == ALL and read.http_status == 400
    assert read.problem == (
        f"There is no thing status “{raw.strip()[:40]}”: showing every thing. Filter by “open”, “done”, “all”."
    )


def test_a_filter_whose_everything_is_no_tab_is_refused() -> None:
    with pytest.raises(ValueError, match="among its tabs"):
        ListFilter(param="kind", noun="kind", tabs=(("a", "A"),), default="a")
