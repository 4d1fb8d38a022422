"""The structured policy editor's form: taxonomy <-> rows of fields, with add/remove rows.

Field names: category ``i`` uses ``c{i}-key``, ``c{i}-name``, ``c{i}-remove``; its tag ``j`` uses
``c{i}t{j}-key``, ``-name``, ``-keywords`` (comma-separated), ``-criteria`` (one per line),
``-severities`` (checkboxes) and ``-remove``. ``categories`` and ``c{i}-tags`` hold the row counts,
so the form works without JavaScript: "add tag" / "add category" re-render it with a blank row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict

from moderation.policies.taxonomy import SEVERITIES

MAX_ROWS = 500  # a hostile count field must not make the server loop for ever


@dataclass
class TagRow:
    key: str = ""
    name: str = ""
    keywords: str = ""
    criteria: str = ""
    severities: list[str] = field(default_factory=list)
    remove: bool = False

    def is_blank(self) -> bool:
        return not (self.key.strip() or self.name.strip() or self.keywords.strip() or self.criteria.strip())


@dataclass
class CategoryRow:
    key: str = ""
    name: str = ""
    remove: bool = False
    tags: list[TagRow] = field(default_factory=list)

    def is_blank(self) -> bool:
        return not (self.key.strip() or self.name.strip()) and all(t.is_blank() for t in self.tags)


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


def _count(data: QueryDict, name: str) -> int:
    try:
        return max(0, min(int(data.get(name, "0")), MAX_ROWS))
    except ValueError:
        return 0


def editor_rows_from_post(data: QueryDict) -> list[CategoryRow]:
    rows = []
    for i in range(_count(data, "categories")):
        c = f"c{i}"
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
                    for j in range(_count(data, f"{c}-tags"))
                ],
            )
        )
    return rows


def editor_apply_action(rows: list[CategoryRow], action: str) -> bool:
    """Apply an "add_tag:<i>" or "add_category" button; False if ``action`` is not one of them."""
    if action == "add_category":
        rows.append(CategoryRow(tags=[TagRow()]))
        return True
    match = re.fullmatch(r"add_tag:(\d+)", action)
    if match and int(match.group(1)) < len(rows):
        rows[int(match.group(1))].tags.append(TagRow())
        return True
    return False


def editor_taxonomy_from_rows(rows: list[CategoryRow], *, output_format: str) -> list[dict[str, Any]]:
    """The taxonomy the rows describe: removed and untouched blank rows are left out.

    Severities are kept only when some are ticked or the policy asks for BLM output (where an empty
    list is an error the validator reports), so a KuaiMod tag does not grow an empty field.
    """
    taxonomy = []
    for c in rows:
        if c.remove or c.is_blank():
            continue
        tags = []
        for t in c.tags:
            if t.remove or t.is_blank():
                continue
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
