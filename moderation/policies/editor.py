"""The structured policy editor's form: taxonomy <-> rows of fields, with add/remove rows.

Field names: category ``i`` uses ``c{i}-key``, ``c{i}-name``, ``c{i}-remove``; its tag ``j`` uses
``c{i}t{j}-key``, ``-name``, ``-keywords`` (comma-separated), ``-criteria`` (one per line),
``-severities`` (checkboxes) and ``-remove``. ``categories`` and ``c{i}-tags`` hold the row counts,
so the form works without JavaScript: "add tag" / "add category" re-render it with a blank row.
A draft refused for its taxonomy marks each field with a problem (``editor_mark_problems``): the row's ``errors``
say it beside the field, ``focus`` names the one field the page opens focused on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict

from moderation.policies.taxonomy import SEVERITIES, TAXONOMY_MAX_ROWS, TaxonomyProblem

MAX_ROWS = TAXONOMY_MAX_ROWS  # the taxonomy's limit: a hostile count field must not make the server loop for ever


@dataclass
class TagRow:
    key: str = ""
    name: str = ""
    keywords: str = ""
    criteria: str = ""
    severities: list[str] = field(default_factory=list)
    remove: bool = False
    errors: dict[str, list[str]] = field(default_factory=dict)  # field -> its problems (editor_mark_problems)
    focus: str = ""  # the field the page opens focused on, when it is this row's
    called: str = ""  # what its fields' accessible names say it is (``editor_name_rows``)

    def is_blank(self) -> bool:
        return not (self.key.strip() or self.name.strip() or self.keywords.strip() or self.criteria.strip())


@dataclass
class CategoryRow:
    key: str = ""
    name: str = ""
    remove: bool = False
    tags: list[TagRow] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    focus: str = ""
    called: str = ""

    def is_blank(self) -> bool:
        return not (self.key.strip() or self.name.strip()) and all(t.is_blank() for t in self.tags)


def editor_name_rows(rows: list[CategoryRow], *, blm: bool = False) -> list[CategoryRow]:
    """Name each row for its fields' accessible names: ``category 2 “Scams”``, ``tag 1 “Private trade” in category 2
    “Scams”`` (``new tag 3 in …`` while it has no name or key; BLM-Guard's risk scenes and violation types). The
    fields were named "Tag 1 key", "Tag 1 keywords": every category's first tag alike, and nothing said which tag
    a screen reader was on; the number keeps two rows of one name apart."""
    category_noun, tag_noun = ("risk scene", "violation type") if blm else ("category", "tag")
    for i, category in enumerate(rows, start=1):
        title = (category.name or category.key).strip()
        category.called = f"{category_noun} {i} “{title}”" if title else f"new {category_noun} {i}"
        for j, tag in enumerate(category.tags, start=1):
            tag_title = (tag.name or tag.key).strip()
            which = f"{tag_noun} {j} “{tag_title}”" if tag_title else f"new {tag_noun} {j}"
            tag.called = f"{which} in {category.called}"
    return rows


def editor_rows_from_taxonomy(taxonomy: list[dict[str, Any]]) -> list[CategoryRow]:
    return [
        CategoryRow(
            key=c.get("key", ""),
            name=c.get("name", ""),
            tags=[
                TagRow(
                    key=t.get("key", ""),
                    name=t.get("name", ""),
                    keywords=", ".join(t.get("keywords", [])),
                    criteria="\n".join(t.get("criteria", [])),
                    severities=list(t.get("severities", [])),
                )
                for t in c.get("tags", [])
            ],
        )
        for c in taxonomy
    ]


# One row past the limit is read, so that a post going past it is refused with the taxonomy's message
# (``taxonomy_problems``), as a pasted JSON taxonomy is, instead of saved with its last rows silently left out.
_READ_ROWS = MAX_ROWS + 1


# The most fields one post of the structured editor carries: the form's own (csrf token, mode, base, categories,
# notes, action), four a category (key, name, remove, its tag count) and eight a tag (key, name, keywords, criteria,
# up to three severities, remove), for as many rows as the editor ever draws (the rows it reads and one added).
# Django refuses a form of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields before the editor reads it: at its
# default of 1,000, some 120 full tag rows were the most one post could save. The settings' limit is held to this
# by a system check (moderation.policies.checks).
EDITOR_FORM_FIELDS = 6
EDITOR_FIELDS_PER_CATEGORY = 4
EDITOR_FIELDS_PER_TAG = 4 + len(SEVERITIES) + 1
EDITOR_MAX_FIELDS = EDITOR_FORM_FIELDS + (_READ_ROWS + 1) * (EDITOR_FIELDS_PER_CATEGORY + EDITOR_FIELDS_PER_TAG)


def _count(data: QueryDict, name: str) -> int:
    try:
        return max(0, min(int(data.get(name, "0")), _READ_ROWS))
    except ValueError:
        return 0


def editor_rows_from_post(data: QueryDict) -> list[CategoryRow]:
    """The editor's rows as posted: at most one past ``MAX_ROWS`` categories and tag rows in all (``_READ_ROWS``).
    Capped per category only, 500 categories of 500 tags each were 250,000 rows to read and draw again: one post
    held a web worker for minutes."""
    rows = []
    tags_left = _READ_ROWS
    for i in range(_count(data, "categories")):
        c = f"c{i}"
        tag_count = min(_count(data, f"{c}-tags"), tags_left)
        tags_left -= tag_count
        rows.append(
            CategoryRow(
                key=data.get(f"{c}-key", ""),
                name=data.get(f"{c}-name", ""),
                remove=bool(data.get(f"{c}-remove")),
                tags=[
                    TagRow(
                        key=data.get(f"{c}t{j}-key", ""),
                        name=data.get(f"{c}t{j}-name", ""),
                        keywords=data.get(f"{c}t{j}-keywords", ""),
                        criteria=data.get(f"{c}t{j}-criteria", ""),
                        severities=[s for s in SEVERITIES if s in data.getlist(f"{c}t{j}-severities")],
                        remove=bool(data.get(f"{c}t{j}-remove")),
                    )
                    for j in range(tag_count)
                ],
            )
        )
    return rows


def editor_apply_action(rows: list[CategoryRow], action: str) -> bool:
    """Apply an "add_tag:<i>" or "add_category" button, or "reshow" (draw the rows sent, saving nothing: an edit
    kept in the browser that had added rows, put back after the session ended); False for any other ``action``.

    The page re-renders focused on the new row's key: without it, it opened at its top with nothing
    focused, and the row added to a category far down the page was out of sight."""
    if action == "reshow":
        return True
    if action == "add_category":
        rows.append(CategoryRow(tags=[TagRow()], focus="key"))
        return True
    match = re.fullmatch(r"add_tag:(\d+)", action)
    if match and int(match.group(1)) < len(rows):
        rows[int(match.group(1))].tags.append(TagRow(focus="key"))
        return True
    return False


def editor_taxonomy_from_rows(rows: list[CategoryRow], *, output_format: str) -> list[dict[str, Any]]:
    """The taxonomy the rows describe: removed and untouched blank rows are left out.

    Severities are kept only when some are ticked or the policy asks for BLM output (where an empty
    list is an error the validator reports), so a KuaiMod tag does not grow an empty field.
    """
    taxonomy = []
    for _i, c, kept_tags in _kept(rows):
        tags = []
        for _j, t in kept_tags:
            tag: dict[str, Any] = {
                "key": t.key.strip(),
                "name": t.name.strip(),
                "keywords": [k.strip() for k in re.split(r"[,，、]", t.keywords) if k.strip()],
            }
            criteria = [line.strip() for line in t.criteria.splitlines() if line.strip()]
            if criteria:
                tag["criteria"] = criteria
            if t.severities or output_format == "blm":
                tag["severities"] = list(t.severities)
            tags.append(tag)
        taxonomy.append({"key": c.key.strip(), "name": c.name.strip(), "tags": tags})
    return taxonomy


def _kept(rows: list[CategoryRow]) -> list[tuple[int, CategoryRow, list[tuple[int, TagRow]]]]:
    """The rows that make the taxonomy, with their places in the form: removed and untouched blank rows left out."""
    return [
        (i, c, [(j, t) for j, t in enumerate(c.tags) if not (t.remove or t.is_blank())])
        for i, c in enumerate(rows)
        if not (c.remove or c.is_blank())
    ]


_FIELD_ORDER = ("key", "name", "keywords", "criteria", "severities")


def editor_mark_problems(
    rows: list[CategoryRow], problems: list[TaxonomyProblem], *, base_rows: list[CategoryRow]
) -> bool:
    """Mark on ``rows`` the fields ``problems`` (``taxonomy_problems`` of ``editor_taxonomy_from_rows(rows)``) are
    about, each with its message, and focus the first of them in the form's order; False when none is a field's.

    A key used twice is marked where it was typed in this edit: the validator reports the later use, but a tag added
    to the first category with a key the third already has makes the third's untouched row the later one. A row is
    typed in this edit when its key differs from ``base_rows`` (the rows of the version the edit started from, whose
    places the form keeps: removing marks a row, adding appends one) at its place."""
    places = _kept(rows)
    marked: list[tuple[tuple[int, int, int], CategoryRow | TagRow, str]] = []

    def row_at(ci: int | None, ti: int | None) -> tuple[tuple[int, int], CategoryRow | TagRow] | None:
        if ci is None or ci >= len(places):
            return None
        i, category, tags = places[ci]
        if ti is None:
            return (i, -1), category
        if ti >= len(tags):
            return None
        j, tag = tags[ti]
        return (i, j), tag

    for problem in problems:
        found = row_at(problem.category, problem.tag)
        if found is None or problem.field not in _FIELD_ORDER:
            continue  # said in the list above the form only
        # Beside its field the message need not say where it is.
        place, row, message = found[0], found[1], problem.message.removeprefix(f"{problem.where}: ")
        earlier = row_at(*problem.first) if problem.first is not None else None
        if earlier is not None and not _typed(place, row, base_rows) and _typed(earlier[0], earlier[1], base_rows):
            key = row.key.strip()
            place, row = earlier
            message = f"key {key!r} is also used by {problem.where}."
        row.errors.setdefault(problem.field, []).append(message[:1].upper() + message[1:])
        marked.append(((*place, _FIELD_ORDER.index(problem.field)), row, problem.field))
    if not marked:
        return False
    _order, row, name = min(marked, key=lambda m: m[0])
    row.focus = name
    return True


def _typed(place: tuple[int, int], row: CategoryRow | TagRow, base_rows: list[CategoryRow]) -> bool:
    """Whether ``row``'s key at ``place`` ((category, tag) in the form, tag -1 for the category's own) is not the
    key the row had in the version the edit started from (a new row's always is not)."""
    i, j = place
    if i >= len(base_rows):
        return True
    before: CategoryRow | TagRow = base_rows[i]
    if j >= 0:
        if j >= len(base_rows[i].tags):
            return True
        before = base_rows[i].tags[j]
    return row.key.strip() != before.key.strip()
