"""The taxonomy JSON of a policy version: one validator and one structural diff.

Both policy shapes share one JSON form, a list of major categories::

    [{"key": "...", "name": "...", "tags": [
        {"key": "...", "name": "...", "keywords": ["..."],
         "criteria": ["..."],                       # optional rubric text, one criterion per item
         "severities": ["low", "medium", "high"]}   # optional; required when the policy asks for BLM output
    ]}]

KuaiMod reads it as major category -> fine tag; BLM-Guard as risk scene -> violation type, with the
tag's ``severities`` as the third level. A tag's ``key`` is the label models output and decisions
store, so keys are unique across the whole taxonomy, not only within a category.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from workbench.text import character_named, has_unstorable, invisible_character, plain_name, shown_text

# The one list of severities. A violation's severity is one of SEVERITIES (those its tag allows, all of
# them when the tag names none); the non-violative label's is NO_SEVERITY. Everything else (the review
# form, the BLM-Guard parser and its guided-decoding schema, the baseline) reads them from here or from
# PolicySpec.severities_for (moderation/policies/spec.py).
SEVERITIES: tuple[str, ...] = ("low", "medium", "high")
NO_SEVERITY = "none"
ALL_SEVERITIES: tuple[str, ...] = (NO_SEVERITY, *SEVERITIES)
# A tag's key is the label decisions, reviews and trusted labels store in columns of this many
# characters (``Decision.label``, ``Review.label``, ``ItemLabel.label``): a longer key would be
# published and then fail every decision and override that names it.
LABEL_MAX_LENGTH = 100
# The most categories, and the most tags in all, one taxonomy holds: the structured editor reads at most this many
# rows of each (``editor_rows_from_post``) and every taxonomy saved, pasted as JSON or sent by any other way, is
# refused past it (``taxonomy_problems``), so one post cannot make the server validate, diff and draw a taxonomy
# the 10 MB body limit alone would let through (hundreds of thousands of tags).
TAXONOMY_MAX_ROWS = 500
CATEGORY_FIELDS = {"key", "name", "tags"}
TAG_FIELDS = {"key", "name", "keywords", "criteria", "severities"}


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _nonempty_name(value: Any) -> bool:
    """Whether ``value`` is a name once stored (``plain_name``): one of bidi controls and zero-width spaces alone was
    stored as an empty name."""
    return isinstance(value, str) and plain_name(value).strip() != ""


def _text(value: Any) -> str:
    """``value`` stripped if it is a string, else "" (so a number or list as a key reads as missing)."""
    return value.strip() if isinstance(value, str) else ""


def _string_list_errors(value: Any, where: str, what: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{where}: {what} must be a list of strings."]
    errors = []
    seen: set[str] = set()
    # Each repeated entry once, with how often it came back: a keyword pasted three times was said twice, and
    # "keywords repeats 'a'. keywords repeats 'b'. keywords repeats 'a'. …" read as more problems than there were.
    repeated: dict[str, tuple[str, int]] = {}
    for item in value:
        # As stored (``taxonomy_normalise`` drops bidi controls): a keyword of marks alone is empty, and "we\u2066chat"
        # repeats "wechat".
        if not _nonempty_str(item) or not shown_text(item).strip():
            errors.append(f"{where}: every entry of {what} must be a non-empty string (got {item!r}).")
            continue
        stored = shown_text(item).strip()
        if stored.lower() in seen:
            first, times = repeated.get(stored.lower(), (stored, 1))
            repeated[stored.lower()] = (first, times + 1)
        else:
            seen.add(stored.lower())
    for first, times in repeated.values():
        errors.append(f"{where}: {what} repeats {first!r}" + (f" ({times} times)." if times > 2 else "."))
    return errors


@dataclass(frozen=True)
class TaxonomyProblem:
    """One problem of a taxonomy (``taxonomy_problems``): ``message`` as the editor lists it, and where it is, so the
    structured editor can mark the field to fix: ``category`` and ``tag`` (0-based places in the taxonomy; None: not
    that deep), ``field`` (the category's or tag's field, e.g. "key"; "" for the item as a whole), ``where`` (the
    place as the message names it) and, for a key used twice, ``first`` and ``first_where``: the earlier use (its tag
    None for a category)."""

    message: str
    category: int | None = None
    tag: int | None = None
    field: str = ""
    where: str = ""
    first: tuple[int, int | None] | None = None
    first_where: str = ""


def taxonomy_errors(taxonomy: Any, *, safe_label: str, output_format: str = "kuaimod") -> list[str]:
    """Every problem with ``taxonomy`` as a user-readable sentence; an empty list means it is valid.

    Checks: the shape above (no unknown fields, so a typo like ``"keyword"`` is caught), non-empty
    keys and names, category keys unique, tag keys unique across the taxonomy and different from the
    safe label, keywords and criteria lists of distinct non-empty strings, severities drawn from
    :data:`SEVERITIES` and present on every tag when the policy asks for BLM-Guard output.
    """
    return [p.message for p in taxonomy_problems(taxonomy, safe_label=safe_label, output_format=output_format)]


def taxonomy_problems(taxonomy: Any, *, safe_label: str, output_format: str = "kuaimod") -> list[TaxonomyProblem]:
    """``taxonomy_errors``' problems, each with where it is in the taxonomy."""
    if not isinstance(taxonomy, list):
        return [TaxonomyProblem("The taxonomy must be a list of categories.")]
    if not taxonomy:
        return [TaxonomyProblem("The taxonomy needs at least one category.")]
    too_many = _too_many_rows(taxonomy)
    if too_many:
        return [too_many]
    if has_unstorable(taxonomy):
        return [
            TaxonomyProblem(
                "Text in the taxonomy may not contain NUL characters (\\u0000) or lone surrogates (\\ud800–\\udfff)."
            )
        ]
    problems: list[TaxonomyProblem] = []
    category_keys: dict[str, tuple[int, str]] = {}  # category key -> where it was first defined
    tag_keys: dict[str, tuple[int, int, str]] = {}  # tag key -> where it was first defined
    for ci, category in enumerate(taxonomy):
        if not isinstance(category, dict):
            problems.append(TaxonomyProblem(f"Category {ci + 1}: must be an object with key, name and tags.", ci))
            continue
        ckey = _text(category.get("key"))
        where = f"Category {ci + 1}" + (f" ({_key_shown(ckey)})" if ckey else "")

        def at(message: str, field: str = "", ci: int = ci, where: str = where) -> TaxonomyProblem:
            return TaxonomyProblem(f"{where}: {message}", ci, None, field, where)

        unknown = sorted(set(category) - CATEGORY_FIELDS)
        if unknown:
            problems.append(at(f"unknown field(s) {', '.join(unknown)}."))
        hidden = _hidden_in_key(ckey)
        if not ckey:
            problems.append(at("key must not be empty.", "key"))
        elif hidden:
            problems.append(at(hidden, "key"))
        elif ckey in category_keys:
            first, first_where = category_keys[ckey]
            problems.append(
                replace(
                    at(f"key {ckey!r} is used by another category.", "key"),
                    first=(first, None),
                    first_where=first_where,
                )
            )
        else:
            category_keys[ckey] = (ci, where)
        if not _nonempty_name(category.get("name")):
            problems.append(at("name must not be empty.", "name"))
        tags = category.get("tags")
        if not isinstance(tags, list) or not tags:
            problems.append(at("needs a list of at least one tag."))
            continue
        for ti, tag in enumerate(tags):
            problems += _tag_problems(tag, f"{where}, tag {ti + 1}", (ci, ti), tag_keys, safe_label, output_format)
    return problems


def _hidden_in_key(key: str) -> str | None:
    """Why ``key`` cannot be a category's or a tag's key: it holds a character drawn as nothing or a bidi control.
    A key is the label every verdict, queue and export shows: "正向\u200b" read as the safe label while it was a
    violation, "spam\u200b" beside "spam" as one type twice, and "ham\u202e" turned the text after it around.
    None when it holds none."""
    hidden = next((ch for ch in key if _hidden(ch)), None)
    if hidden is None:
        return None
    kind = "an invisible bidi control" if shown_text(hidden) != hidden else "an invisible character"
    seen = "".join(ch for ch in key if not _hidden(ch))
    return (
        f"key “{_key_shown(key)}” holds {kind} ({character_named(hidden)}): it would read as “{seen}”; type the "
        "key without it."
    )


def _hidden(ch: str) -> bool:
    """Whether ``ch``, alone, is drawn as nothing or is a bidi control (a joiner alone joins nothing)."""
    return shown_text(ch) != ch or invisible_character(ch) is not None


def _key_shown(key: str) -> str:
    """``key`` as a message names it: each hidden character written as its code ("spam\\u200b"), so a bidi control
    in it cannot turn the message around."""
    return "".join(f"\\u{ord(ch):04x}" if _hidden(ch) else ch for ch in key)


def _too_many_rows(taxonomy: list[Any]) -> TaxonomyProblem | None:
    """The one problem of a taxonomy past ``TAXONOMY_MAX_ROWS`` categories or tags in all, checked before anything
    else so that its size bounds the work; None within the limit."""
    tags = sum(len(c["tags"]) for c in taxonomy if isinstance(c, dict) and isinstance(c.get("tags"), list))
    if len(taxonomy) <= TAXONOMY_MAX_ROWS and tags <= TAXONOMY_MAX_ROWS:
        return None
    return TaxonomyProblem(
        f"The taxonomy has {len(taxonomy):,} {'category' if len(taxonomy) == 1 else 'categories'} and "
        f"{tags:,} {'tag' if tags == 1 else 'tags'}; a policy holds at most {TAXONOMY_MAX_ROWS} categories and "
        f"{TAXONOMY_MAX_ROWS} tags in all. Remove some, or split them into another policy."
    )


def _tag_problems(
    tag: Any,
    where: str,
    place: tuple[int, int],
    tag_keys: dict[str, tuple[int, int, str]],
    safe_label: str,
    output_format: str,
) -> list[TaxonomyProblem]:
    if not isinstance(tag, dict):
        return [TaxonomyProblem(f"{where}: must be an object with key, name and keywords.", *place, "", where)]
    key = _text(tag.get("key"))
    if key:
        where = f"{where} ({_key_shown(key if len(key) <= 40 else key[:40] + '…')})"

    def at(message: str, field: str = "") -> TaxonomyProblem:
        return TaxonomyProblem(f"{where}: {message}", *place, field, where)

    problems: list[TaxonomyProblem] = []
    unknown = sorted(set(tag) - TAG_FIELDS)
    if unknown:
        problems.append(at(f"unknown field(s) {', '.join(unknown)}."))
    if not key:
        problems.append(at("key must not be empty.", "key"))
    elif len(key) > LABEL_MAX_LENGTH:
        problems.append(
            at(
                f"key is {len(key):,} characters; a label key has at most {LABEL_MAX_LENGTH} "
                "(put longer text in the name or the rubric criteria).",
                "key",
            )
        )
    elif _hidden_in_key(key):
        problems.append(at(str(_hidden_in_key(key)), "key"))
    elif key == safe_label:
        problems.append(at(f"key {key!r} is the non-violative label and cannot be a violation tag.", "key"))
    elif key in tag_keys:
        fci, fti, first_where = tag_keys[key]
        problems.append(
            replace(
                at(f"key {key!r} is already used by {first_where}.", "key"), first=(fci, fti), first_where=first_where
            )
        )
    else:
        tag_keys[key] = (*place, where)
    if not _nonempty_name(tag.get("name")):
        problems.append(at("name must not be empty.", "name"))
    problems += [
        TaxonomyProblem(m, *place, "keywords", where)
        for m in _string_list_errors(tag.get("keywords", None), where, "keywords")
    ]
    if "criteria" in tag:
        problems += [
            TaxonomyProblem(m, *place, "criteria", where)
            for m in _string_list_errors(tag["criteria"], where, "criteria")
        ]
    severities = tag.get("severities")
    if severities is None:
        if output_format == "blm":
            problems.append(at("BLM-Guard policies need the allowed severities of every violation type.", "severities"))
    elif not isinstance(severities, list) or not all(isinstance(s, str) for s in severities):
        problems.append(at(f"severities must be a list drawn from {', '.join(SEVERITIES)}.", "severities"))
    else:
        bad = [s for s in severities if s not in SEVERITIES]
        if bad:
            problems.append(
                at(
                    f"unknown severit{'y' if len(bad) == 1 else 'ies'} {', '.join(map(repr, bad))}; "
                    f"allowed: {', '.join(SEVERITIES)}.",
                    "severities",
                )
            )
        if len(set(severities)) != len(severities):
            problems.append(at("severities repeat a value.", "severities"))
        if not severities and output_format == "blm":
            problems.append(at("BLM-Guard policies need at least one severity per violation type.", "severities"))
    return problems


def taxonomy_normalise(taxonomy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A valid taxonomy with whitespace stripped and severities in canonical order (for storage). Names, criteria
    and keywords, read by reviewers on every item, by the model in its prompt and matched against a video's text,
    lose their invisible bidi controls (``plain_name``, ``shown_text``), as video titles do; names also the
    characters drawn as nothing."""
    out = []
    for category in taxonomy:
        tags = []
        for tag in category["tags"]:
            clean: dict[str, Any] = {
                "key": tag["key"].strip(),
                "name": plain_name(tag["name"]).strip(),
                "keywords": [shown_text(k).strip() for k in tag["keywords"]],
            }
            if tag.get("criteria"):
                clean["criteria"] = [shown_text(c).strip() for c in tag["criteria"]]
            if "severities" in tag:
                clean["severities"] = [s for s in SEVERITIES if s in tag["severities"]]
            tags.append(clean)
        out.append({"key": category["key"].strip(), "name": plain_name(category["name"]).strip(), "tags": tags})
    return out


@dataclass(frozen=True)
class TaxonomyChange:
    """One difference between two taxonomies.

    ``kind`` is one of: category_added, category_removed, category_renamed, tag_added, tag_removed,
    tag_renamed, tag_moved, keywords_added, keywords_removed, criteria_added, criteria_removed,
    severities_changed, setting_changed. ``items`` lists the keywords/criteria concerned.
    ``category_name`` and ``tag_name`` are the English names of ``category`` and ``tag`` (the newer
    taxonomy's, else the older's), so a reader need not know the keys.
    """

    kind: str
    category: str = ""
    tag: str = ""
    before: str = ""
    after: str = ""
    items: tuple[str, ...] = ()
    category_name: str = ""
    tag_name: str = ""

    @property
    def is_removal(self) -> bool:
        return self.kind.endswith("_removed")

    @property
    def label(self) -> str:
        return CHANGE_LABELS.get(self.kind, self.kind)


CHANGE_LABELS = {
    "setting_changed": "Setting changed",
    "category_added": "Category added",
    "category_removed": "Category removed",
    "category_renamed": "Category renamed",
    "tag_added": "Tag added",
    "tag_removed": "Tag removed",
    "tag_renamed": "Tag renamed",
    "tag_moved": "Tag moved to another category",
    "keywords_added": "Keywords added",
    "keywords_removed": "Keywords removed",
    "criteria_added": "Criteria added",
    "criteria_removed": "Criteria removed",
    "severities_changed": "Severities changed",
}


def _index_tags(taxonomy: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {t["key"]: (c["key"], t) for c in taxonomy for t in c.get("tags", [])}


def _added_removed(before: list[str], after: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    b, a = set(before), set(after)
    return tuple(x for x in after if x not in b), tuple(x for x in before if x not in a)


def taxonomy_diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[TaxonomyChange]:
    """What changed from taxonomy ``a`` to ``b``, matched by key.

    A key is the label decisions store, so a changed key is a removal plus an addition (existing
    decisions keep the old label); a changed name under the same key is a rename.
    """
    changes: list[TaxonomyChange] = []
    cats_a = {c["key"]: c for c in a}
    cats_b = {c["key"]: c for c in b}
    for key, cat in cats_b.items():
        if key not in cats_a:
            changes.append(TaxonomyChange("category_added", category=key, after=cat.get("name", "")))
        elif cats_a[key].get("name") != cat.get("name"):
            changes.append(
                TaxonomyChange(
                    "category_renamed", category=key, before=cats_a[key].get("name", ""), after=cat.get("name", "")
                )
            )
    for key, cat in cats_a.items():
        if key not in cats_b:
            changes.append(TaxonomyChange("category_removed", category=key, before=cat.get("name", "")))

    tags_a, tags_b = _index_tags(a), _index_tags(b)
    for key, (cat_key, tag) in tags_b.items():
        if key not in tags_a:
            changes.append(
                TaxonomyChange(
                    "tag_added",
                    category=cat_key,
                    tag=key,
                    after=tag.get("name", ""),
                    items=tuple(tag.get("keywords", [])),
                )
            )
            continue
        old_cat, old = tags_a[key]
        if old_cat != cat_key:
            changes.append(TaxonomyChange("tag_moved", category=cat_key, tag=key, before=old_cat, after=cat_key))
        if old.get("name") != tag.get("name"):
            changes.append(
                TaxonomyChange(
                    "tag_renamed", category=cat_key, tag=key, before=old.get("name", ""), after=tag.get("name", "")
                )
            )
        for field_name in ("keywords", "criteria"):
            added, removed = _added_removed(old.get(field_name, []), tag.get(field_name, []))
            if added:
                changes.append(TaxonomyChange(f"{field_name}_added", category=cat_key, tag=key, items=added))
            if removed:
                changes.append(TaxonomyChange(f"{field_name}_removed", category=cat_key, tag=key, items=removed))
        if old.get("severities") != tag.get("severities"):
            changes.append(
                TaxonomyChange(
                    "severities_changed",
                    category=cat_key,
                    tag=key,
                    before=", ".join(old.get("severities") or []) or "—",
                    after=", ".join(tag.get("severities") or []) or "—",
                )
            )
    for key, (cat_key, tag) in tags_a.items():
        if key not in tags_b:
            changes.append(TaxonomyChange("tag_removed", category=cat_key, tag=key, before=tag.get("name", "")))
    category_names = {key: str(c.get("name", "")) for key, c in (cats_a | cats_b).items()}
    tag_names = {key: str(t.get("name", "")) for key, (_cat, t) in (tags_a | tags_b).items()}
    return [
        replace(c, category_name=category_names.get(c.category, ""), tag_name=tag_names.get(c.tag, "")) for c in changes
    ]
