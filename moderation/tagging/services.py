"""Tagging writes: vocabulary import and edits (each a new vocabulary version), tag embeddings,
candidates and ranking for a video, reviewers' tag decisions, ranker training, the curation queue.

``tags_finalize`` is the one place a video's reviewed tags become final: hook notifications
(webhooks, search indexing) there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Max

from moderation.errors import ModerationError
from moderation.tagging import text as tagtext
from moderation.tagging.models import Tag, TagRevision, TagSet, VocabularyVersion

logger = logging.getLogger(__name__)


# --- vocabulary ---------------------------------------------------------------------------------


@dataclass
class ImportReport:
    version: VocabularyVersion | None = None
    created: int = 0
    unchanged: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: why", the line skipped
    notes: list[str] = field(default_factory=list)  # "line N: ...", the line used


def vocabulary_version_create(*, note: str, user: User | None = None) -> VocabularyVersion:
    """The next vocabulary version (callers hold a transaction; the number is taken under a lock)."""
    VocabularyVersion.objects.select_for_update().order_by("-number").first()
    number = (VocabularyVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    return VocabularyVersion.objects.create(number=number, note=note[:500], created_by=user)


def _revise(tag: Tag, version: VocabularyVersion) -> None:
    TagRevision.objects.update_or_create(
        tag=tag,
        version=version,
        defaults={"name": tag.name, "aliases": tag.aliases, "parent": tag.parent, "is_active": tag.is_active},
    )


def _index_fields(name: str, aliases: list[str]) -> dict[str, Any]:
    names = [name, *aliases]
    return {
        "search_grams": tagtext.search_grams(names),
        "search_text": "\n".join(tagtext.normalise(n) for n in names),
    }


def _parse_aliases(raw: str) -> tuple[list[str], str | None]:
    aliases: list[str] = []
    for part in raw.replace("|", ",").split(","):
        alias = part.strip()
        if not alias:
            continue
        problem = tagtext.tag_name_problem(alias)
        if problem:
            return [], f"alias “{alias[:40]}”: {problem}"
        if alias not in aliases:
            aliases.append(alias)
    return aliases, None


@transaction.atomic
def tags_import(
    *, lines: Iterable[str], user: User | None = None, note: str = "", source: str = Tag.Source.IMPORT
) -> ImportReport:
    """Add the tags of a vocabulary file: one tag per line, ``name`` or ``name<TAB>alias, alias``.

    Every line that cannot be a tag (blank, a NUL or control character, longer than 100 characters)
    is reported as ``line N: why`` and skipped; the rest is imported. A name seen twice is one tag
    (the later line's aliases are added to it, and the line is noted). A name already in the
    vocabulary gets the new aliases only. All of it is one new vocabulary version; the tags'
    embeddings are computed afterwards on the media worker (``embed_tags``)."""
    report = ImportReport()
    parsed: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        name, _, alias_part = line.partition("\t")
        name = name.strip()
        problem = tagtext.tag_name_problem(name) or (None if name else "blank line")
        if problem:
            report.errors.append(f"line {number}: {problem}")
            continue
        aliases, alias_problem = _parse_aliases(alias_part)
        if alias_problem:
            report.errors.append(f"line {number}: {alias_problem}")
            continue
        if name in parsed:
            report.notes.append(f"line {number}: “{name}” repeats line {first_line[name]}; kept as one tag")
            parsed[name] += [a for a in aliases if a not in parsed[name]]
            continue
        parsed[name] = aliases
        first_line[name] = number
    if not parsed:
        return report
    version = vocabulary_version_create(note=note or f"import of {len(parsed)} tags", user=user)
    report.version = version
    existing = {t.name: t for t in Tag.objects.select_for_update().filter(name__in=list(parsed))}
    new_tags: list[Tag] = []
    for name, aliases in parsed.items():
        tag = existing.get(name)
        if tag is None:
            new_tags.append(
                Tag(name=name, aliases=aliases, source=source, created_version=version, **_index_fields(name, aliases))
            )
            continue
        added = [a for a in aliases if a not in tag.aliases]
        if not added:
            report.unchanged += 1
            continue
        tag.aliases = [*tag.aliases, *added]
        for key, value in _index_fields(tag.name, tag.aliases).items():
            setattr(tag, key, value)
        tag.save(update_fields=["aliases", "search_grams", "search_text"])
        _revise(tag, version)
        report.updated += 1
    created = Tag.objects.bulk_create(new_tags, batch_size=1000)
    TagRevision.objects.bulk_create(
        [TagRevision(tag=t, version=version, name=t.name, aliases=t.aliases, is_active=True) for t in created],
        batch_size=1000,
    )
    report.created = len(created)
    if created:
        transaction.on_commit(_send_embed_tags)
    return report


def _send_embed_tags() -> None:
    from moderation.tagging.tasks import embed_tags

    embed_tags.delay()


@transaction.atomic
def tags_import_hierarchy(*, lines: Iterable[str], user: User | None = None) -> ImportReport:
    """Set parents from a two-column file: ``child<TAB>parent`` (names in the vocabulary).

    Unknown names, a tag made its own ancestor, and malformed lines are per-line errors."""
    report = ImportReport()
    pairs: list[tuple[int, str, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            report.errors.append(f"line {number}: blank line")
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) != 2 or not all(parts):
            report.errors.append(f"line {number}: expected “child<TAB>parent”")
            continue
        problem = tagtext.tag_name_problem(parts[0]) or tagtext.tag_name_problem(parts[1])
        if problem:
            report.errors.append(f"line {number}: {problem}")
            continue
        pairs.append((number, parts[0], parts[1]))
    tags = {t.name: t for t in Tag.objects.select_for_update().filter(name__in={n for p in pairs for n in p[1:]})}
    version: VocabularyVersion | None = None
    for number, child_name, parent_name in pairs:
        child, parent = tags.get(child_name), tags.get(parent_name)
        missing = [n for n, t in ((child_name, child), (parent_name, parent)) if t is None]
        if missing:
            report.errors.append(f"line {number}: not in the vocabulary: {', '.join(missing)}")
            continue
        assert child is not None and parent is not None
        try:
            _check_parent(child, parent)
        except ModerationError as exc:
            report.errors.append(f"line {number}: {exc}")
            continue
        if child.parent_id == parent.pk:
            report.unchanged += 1
            continue
        version = version or vocabulary_version_create(note="hierarchy import", user=user)
        child.parent = parent
        child.save(update_fields=["parent"])
        _revise(child, version)
        report.updated += 1
    report.version = version
    report.errors.sort(key=lambda e: int(e.split(":")[0].split()[1]))
    return report


def _check_parent(child: Tag, parent: Tag | None) -> None:
    seen = {child.pk}
    node = parent
    while node is not None:
        if node.pk in seen:
            raise ModerationError(f"“{parent.name if parent else ''}” is “{child.name}” itself or below it.")
        seen.add(node.pk)
        node = node.parent
        if len(seen) > 100:
            raise ModerationError("The hierarchy is deeper than 100 levels.")


@transaction.atomic
def tag_update(
    *,
    tag: Tag,
    user: User,
    name: str | None = None,
    aliases: list[str] | None = None,
    parent: Tag | None | bool = False,
    is_active: bool | None = None,
) -> Tag:
    """Edit one tag (a new vocabulary version). ``parent=False`` leaves the parent as it is."""
    locked = Tag.objects.select_for_update().get(pk=tag.pk)
    if name is not None:
        name = name.strip()
        problem = tagtext.tag_name_problem(name)
        if problem:
            raise ModerationError(f"Tag name: {problem}.")
        if Tag.objects.filter(name=name).exclude(pk=locked.pk).exists():
            raise ModerationError(f"“{name}” is already a tag.")
        locked.name = name
    if aliases is not None:
        clean, problem = _parse_aliases(",".join(aliases))
        if problem:
            raise ModerationError(f"Alias {problem}.")
        locked.aliases = clean
    if parent is not False:
        assert parent is None or isinstance(parent, Tag)
        _check_parent(locked, parent)
        locked.parent = parent
    if is_active is not None:
        locked.is_active = is_active
    for key, value in _index_fields(locked.name, locked.aliases).items():
        setattr(locked, key, value)
    if name is not None:
        locked.embedding = None  # recomputed by embed_tags
    locked.save()
    version = vocabulary_version_create(note=f"edit of “{locked.name}”", user=user)
    _revise(locked, version)
    if name is not None:
        transaction.on_commit(_send_embed_tags)
    return locked


def tags_embed_missing(*, batch: int = 256, encode: Callable[[list[str]], Any] | None = None) -> int:
    """Compute the embedding of every tag that has none (worker side: loads the encoder).

    Idempotent: only tags still without an embedding are encoded, in batches, each batch saved."""
    from moderation.tagging import encoder

    encode = encode or encoder.encode
    done = 0
    while True:
        tags = list(Tag.objects.filter(embedding__isnull=True).order_by("pk")[:batch])
        if not tags:
            return done
        vectors = encode([t.name for t in tags])
        for tag, vector in zip(tags, vectors, strict=True):
            tag.embedding = [float(x) for x in vector]
            tag.embedding_model = encoder.ENCODER_NAME
        Tag.objects.bulk_update(tags, ["embedding", "embedding_model"])
        done += len(tags)


def tag_set_default() -> TagSet:
    """The tag set used when none is chosen (all active tags)."""
    found = TagSet.objects.filter(is_default=True).first()
    if found is not None:
        return found
    tag_set, _ = TagSet.objects.get_or_create(
        slug="recommendation", defaults={"name": "Recommendation", "is_default": True}
    )
    return tag_set


def tags_count_accepted(*, tag_ids: Iterable[int], delta: int) -> None:
    Tag.objects.filter(pk__in=list(tag_ids)).update(accepted_count=F("accepted_count") + delta)
